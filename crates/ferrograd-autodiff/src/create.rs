//! Making tensors (zeros, samples, nested arrays, vectors) and reading them back.

use crate::OrPanic;
use crate::tensor::Tensor;
use ferrograd_device::ops::convert::{CastTo, ConvertKernel};
use ferrograd_device::{Dtype, Error, SampleKernel, Storage, Unit, View};
use ferrograd_shapes::{Const, ConstShape, Shape};
use rand::distr::{Distribution, StandardUniform};
use rand_distr::StandardNormal;

/// Creates tensors on a device. Implemented for every device; in the prelude.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_cpu::Cpu;
///
/// let dev = Cpu::default();
/// let a: Tensor<Rank2<2, 3>, f32, Cpu> = dev.zeros();
/// let b = dev.tensor([[1.0f32, 2.0], [3.0, 4.0]]);       // Rank2<2, 2> from the array type
/// let c = dev.tensor_from_vec(vec![1.0f32; 6], (2usize, 3usize)); // run-time dims
/// assert_eq!(a.as_vec(), vec![0.0; 6]);
/// assert_eq!(b.array(), [[1.0, 2.0], [3.0, 4.0]]);
/// assert_eq!(c.dims(), [2, 3]);
/// ```
pub trait TensorCreation<E: Unit>: Storage<E> {
    /// A tensor of zeros (or `false`) of a const shape.
    fn zeros<S: ConstShape>(&self) -> Tensor<S, E, Self> {
        self.zeros_like(&S::default())
    }
    /// [`TensorCreation::zeros`], returning an error instead of panicking.
    fn try_zeros<S: ConstShape>(&self) -> Result<Tensor<S, E, Self>, Error> {
        self.try_zeros_like(&S::default())
    }
    /// A tensor of zeros of `shape`, which may have run-time dims.
    #[track_caller]
    fn zeros_like<S: Shape>(&self, shape: &S) -> Tensor<S, E, Self> {
        self.try_zeros_like(shape).or_panic()
    }
    /// [`TensorCreation::zeros_like`], returning an error instead of panicking.
    fn try_zeros_like<S: Shape>(&self, shape: &S) -> Result<Tensor<S, E, Self>, Error> {
        Ok(Tensor::from_buffer(
            self.try_alloc_zeros(shape.num_elements())?,
            *shape,
            self.clone(),
        ))
    }
    /// A tensor of ones of a const shape.
    fn ones<S: ConstShape>(&self) -> Tensor<S, E, Self>
    where
        E: Dtype,
    {
        self.full(E::ONE)
    }
    /// [`TensorCreation::ones`], returning an error instead of panicking.
    fn try_ones<S: ConstShape>(&self) -> Result<Tensor<S, E, Self>, Error>
    where
        E: Dtype,
    {
        self.try_full(E::ONE)
    }
    /// A tensor of ones of `shape`.
    fn ones_like<S: Shape>(&self, shape: &S) -> Tensor<S, E, Self>
    where
        E: Dtype,
    {
        self.full_like(shape, E::ONE)
    }
    /// [`TensorCreation::ones_like`], returning an error instead of panicking.
    fn try_ones_like<S: Shape>(&self, shape: &S) -> Result<Tensor<S, E, Self>, Error>
    where
        E: Dtype,
    {
        self.try_full_like(shape, E::ONE)
    }
    /// A tensor of a const shape with every element `value`.
    fn full<S: ConstShape>(&self, value: E) -> Tensor<S, E, Self> {
        self.full_like(&S::default(), value)
    }
    /// [`TensorCreation::full`], returning an error instead of panicking.
    fn try_full<S: ConstShape>(&self, value: E) -> Result<Tensor<S, E, Self>, Error> {
        self.try_full_like(&S::default(), value)
    }
    /// A tensor of `shape` with every element `value`.
    #[track_caller]
    fn full_like<S: Shape>(&self, shape: &S, value: E) -> Tensor<S, E, Self> {
        self.try_full_like(shape, value).or_panic()
    }
    /// [`TensorCreation::full_like`], returning an error instead of panicking.
    fn try_full_like<S: Shape>(&self, shape: &S, value: E) -> Result<Tensor<S, E, Self>, Error> {
        Ok(Tensor::from_buffer(
            self.try_alloc_filled(shape.num_elements(), value)?,
            *shape,
            self.clone(),
        ))
    }
    /// A tensor from a scalar or nested arrays; the shape follows from the array type.
    #[track_caller]
    fn tensor<A: TensorData<E>>(&self, data: A) -> Tensor<A::Shape, E, Self> {
        self.try_tensor(data).or_panic()
    }
    /// [`TensorCreation::tensor`], returning an error instead of panicking.
    fn try_tensor<A: TensorData<E>>(&self, data: A) -> Result<Tensor<A::Shape, E, Self>, Error> {
        let (values, shape) = data.into_parts();
        Ok(Tensor::from_buffer(self.try_from_host(values)?, shape, self.clone()))
    }
    /// A tensor from row-major values and a shape (with const or run-time dims).
    ///
    /// # Panics
    /// When the number of values is not the number of elements of `shape`; see
    /// [`TensorCreation::try_tensor_from_vec`].
    #[track_caller]
    fn tensor_from_vec<S: Shape>(&self, data: Vec<E>, shape: S) -> Tensor<S, E, Self> {
        self.try_tensor_from_vec(data, shape).or_panic()
    }
    /// [`TensorCreation::tensor_from_vec`], returning `Error::ShapeMismatch` when the
    /// number of values is not the number of elements of `shape`.
    fn try_tensor_from_vec<S: Shape>(&self, data: Vec<E>, shape: S) -> Result<Tensor<S, E, Self>, Error> {
        if data.len() != shape.num_elements() {
            return Err(Error::ShapeMismatch {
                op: "tensor_from_vec",
                message: format!(
                    "{} values do not fill shape {:?} of {} elements",
                    data.len(),
                    shape.concrete(),
                    shape.num_elements()
                ),
            });
        }
        Ok(Tensor::from_buffer(self.try_from_host(data)?, shape, self.clone()))
    }
}

impl<E: Unit, D: Storage<E>> TensorCreation<E> for D {}

/// Fills tensors with random samples from the device's seeded generator. In the
/// prelude.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_cpu::Cpu;
///
/// let dev = Cpu::seed_from_u64(0);
/// let u: Tensor<Rank1<1000>, f64, Cpu> = dev.sample_uniform();
/// assert!(u.as_vec().iter().all(|&x| (0.0..1.0).contains(&x)));
/// let n: Tensor<Rank2<2, 3>, f32, Cpu> = dev.sample(rand_distr::Normal::new(5.0, 0.1).unwrap());
/// # let _ = n;
/// ```
pub trait SampleTensor<E: Unit>: SampleKernel<E> {
    /// Samples of `distribution`, in a const shape.
    fn sample<S: ConstShape, Dist: Distribution<E>>(&self, distribution: Dist) -> Tensor<S, E, Self> {
        self.sample_like(&S::default(), distribution)
    }
    /// Samples of `distribution`, in `shape`.
    #[track_caller]
    fn sample_like<S: Shape, Dist: Distribution<E>>(&self, shape: &S, distribution: Dist) -> Tensor<S, E, Self> {
        self.try_sample_like(shape, distribution).or_panic()
    }
    /// [`SampleTensor::sample_like`], returning an error instead of panicking.
    fn try_sample_like<S: Shape, Dist: Distribution<E>>(
        &self,
        shape: &S,
        distribution: Dist,
    ) -> Result<Tensor<S, E, Self>, Error> {
        Ok(Tensor::from_buffer(
            self.try_sample(shape.num_elements(), distribution)?,
            *shape,
            self.clone(),
        ))
    }
    /// Uniform samples in `[0, 1)`, in a const shape (PyTorch's `rand`).
    fn sample_uniform<S: ConstShape>(&self) -> Tensor<S, E, Self>
    where
        StandardUniform: Distribution<E>,
    {
        self.sample(StandardUniform)
    }
    /// Uniform samples in `[0, 1)`, in `shape`.
    fn sample_uniform_like<S: Shape>(&self, shape: &S) -> Tensor<S, E, Self>
    where
        StandardUniform: Distribution<E>,
    {
        self.sample_like(shape, StandardUniform)
    }
    /// Standard normal samples, in a const shape (PyTorch's `randn`).
    fn sample_normal<S: ConstShape>(&self) -> Tensor<S, E, Self>
    where
        StandardNormal: Distribution<E>,
    {
        self.sample(StandardNormal)
    }
    /// Standard normal samples, in `shape`.
    fn sample_normal_like<S: Shape>(&self, shape: &S) -> Tensor<S, E, Self>
    where
        StandardNormal: Distribution<E>,
    {
        self.sample_like(shape, StandardNormal)
    }
}

impl<E: Unit, D: SampleKernel<E>> SampleTensor<E> for D {}

/// Data a tensor can be made from: a scalar or nested arrays, whose type gives the
/// shape.
pub trait TensorData<E> {
    /// The shape the data has.
    type Shape: Shape;
    /// The values in row-major order, and the shape.
    fn into_parts(self) -> (Vec<E>, Self::Shape);
}

macro_rules! scalar_data {
    ($($t:ty),*) => {$(
        impl TensorData<$t> for $t {
            type Shape = ();
            fn into_parts(self) -> (Vec<$t>, ()) {
                (vec![self], ())
            }
        }
    )*};
}
scalar_data!(f32, f64, bool, usize);

macro_rules! array_data {
    ($arr:ty, $shape:ty, [$($n:ident),*]) => {
        impl<E: Unit, $(const $n: usize),*> TensorData<E> for $arr {
            type Shape = $shape;
            fn into_parts(self) -> (Vec<E>, $shape) {
                let flat: &[E] = self.as_flattened_all();
                (flat.to_vec(), Default::default())
            }
        }
    };
}

/// Views nested arrays as one flat slice.
trait FlattenAll<E> {
    fn as_flattened_all(&self) -> &[E];
}
impl<E, const M: usize> FlattenAll<E> for [E; M] {
    fn as_flattened_all(&self) -> &[E] {
        self
    }
}
impl<E, const M: usize, const N: usize> FlattenAll<E> for [[E; N]; M] {
    fn as_flattened_all(&self) -> &[E] {
        self.as_flattened()
    }
}
impl<E, const M: usize, const N: usize, const O: usize> FlattenAll<E> for [[[E; O]; N]; M] {
    fn as_flattened_all(&self) -> &[E] {
        self.as_flattened().as_flattened()
    }
}
impl<E, const M: usize, const N: usize, const O: usize, const P: usize> FlattenAll<E> for [[[[E; P]; O]; N]; M] {
    fn as_flattened_all(&self) -> &[E] {
        self.as_flattened().as_flattened().as_flattened()
    }
}

array_data!([E; M], (Const<M>,), [M]);
array_data!([[E; N]; M], (Const<M>, Const<N>), [M, N]);
array_data!([[[E; O]; N]; M], (Const<M>, Const<N>, Const<O>), [M, N, O]);
array_data!(
    [[[[E; P]; O]; N]; M],
    (Const<M>, Const<N>, Const<O>, Const<P>),
    [M, N, O, P]
);

impl<E: Unit> TensorData<E> for Vec<E> {
    type Shape = (usize,);
    fn into_parts(self) -> (Vec<E>, (usize,)) {
        let len = self.len();
        (self, (len,))
    }
}

impl<S: Shape, E: Unit, D: Storage<E>, T> Tensor<S, E, D, T> {
    /// The elements in row-major order of the logical index (strides applied).
    #[track_caller]
    pub fn as_vec(&self) -> Vec<E> {
        self.try_as_vec().or_panic()
    }

    /// [`Tensor::as_vec`], returning an error instead of panicking.
    pub fn try_as_vec(&self) -> Result<Vec<E>, Error> {
        let host = self.device.try_to_host(&self.data)?;
        if self.layout.is_contiguous() && host.len() == self.num_elements() {
            return Ok(host);
        }
        Ok(self.layout.offsets().map(|i| host[i]).collect())
    }

    /// A copy with each element converted to `E2` (`f32` ↔ `f64`, or a mask to 0/1).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_cpu::Cpu;
    /// let x = Cpu::default().tensor([1.5f32, -2.0]);
    /// let y: Tensor<Rank1<2>, f64, Cpu> = x.to_dtype();
    /// assert_eq!(y.array(), [1.5, -2.0]);
    /// ```
    #[track_caller]
    pub fn to_dtype<E2: Unit>(&self) -> Tensor<S, E2, D>
    where
        E: CastTo<E2>,
        D: ConvertKernel<E, E2>,
    {
        self.try_to_dtype().or_panic()
    }

    /// [`Tensor::to_dtype`], returning an error instead of panicking.
    pub fn try_to_dtype<E2: Unit>(&self) -> Result<Tensor<S, E2, D>, Error>
    where
        E: CastTo<E2>,
        D: ConvertKernel<E, E2>,
    {
        let data = self.device.convert(View::new(&self.data, self.layout))?;
        Ok(Tensor::from_buffer(data, self.shape, self.device.clone()))
    }
}

macro_rules! array_readback {
    ($shape:ty, $arr:ty, [$($n:ident),*], |$v:ident| $build:expr) => {
        impl<E: Unit, D: Storage<E>, T, $(const $n: usize),*> Tensor<$shape, E, D, T> {
            /// The elements as nested arrays.
            pub fn array(&self) -> $arr {
                let $v = self.as_vec();
                $build
            }
        }
    };
}

array_readback!((), E, [], |v| v[0]);
array_readback!((Const<M>,), [E; M], [M], |v| std::array::from_fn(|i| v[i]));
array_readback!((Const<M>, Const<N>), [[E; N]; M], [M, N], |v| std::array::from_fn(
    |i| { std::array::from_fn(|j| v[i * N + j]) }
));
array_readback!((Const<M>, Const<N>, Const<O>), [[[E; O]; N]; M], [M, N, O], |v| {
    std::array::from_fn(|i| std::array::from_fn(|j| std::array::from_fn(|k| v[(i * N + j) * O + k])))
});
array_readback!(
    (Const<M>, Const<N>, Const<O>, Const<P>),
    [[[[E; P]; O]; N]; M],
    [M, N, O, P],
    |v| std::array::from_fn(|i| {
        std::array::from_fn(|j| std::array::from_fn(|k| std::array::from_fn(|l| v[((i * N + j) * O + k) * P + l])))
    })
);
