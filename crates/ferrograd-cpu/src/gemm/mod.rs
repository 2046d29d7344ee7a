//! Matrix products: the one GEMM every CPU op that needs one goes through.
//!
//! [`gemm`] computes `c = alpha · a·b + beta · c` for operands of any layout given as a
//! slice plus two strides. Which implementation does the work is chosen by the
//! features `ferrograd-cpu` is compiled with and, without them, by the CPU it runs
//! on; callers never see it:
//!
//! | feature          | backend                                                        |
//! |------------------|----------------------------------------------------------------|
//! | (none)           | ours on CPUs with AVX-512F, else [matrixmultiply]; both threaded |
//! | `mkl`            | Intel MKL through CBLAS, static, LP64, sequential              |
//! | `mkl-threaded`   | Intel MKL through CBLAS, static, LP64, OpenMP threads          |
//! | `openblas`       | the system OpenBLAS through CBLAS                              |
//!
//! The BLAS features are mutually exclusive. [`backend_name`] says which backend is in
//! use; [`gemm_with`] runs a given one.
//!
//! [matrixmultiply]: https://docs.rs/matrixmultiply

#[cfg(all(feature = "openblas", any(feature = "mkl", feature = "mkl-threaded")))]
compile_error!(
    "ferrograd-cpu: the features `openblas` and `mkl`/`mkl-threaded` are mutually exclusive; \
     enable only one BLAS backend"
);
#[cfg(all(feature = "mkl", feature = "mkl-threaded"))]
compile_error!(
    "ferrograd-cpu: the features `mkl` (sequential) and `mkl-threaded` are mutually exclusive; \
     enable only one of them"
);

/// Tells the BLAS library, when it keeps threads of its own (MKL's threaded build,
/// OpenBLAS), the thread count; the other backends split their work on ferrograd's
/// pool, which follows the setting by itself.
pub(crate) fn set_blas_threads(threads: usize) {
    #[cfg(any(feature = "mkl-threaded", feature = "openblas"))]
    cblas::set_threads(threads);
    #[cfg(not(any(feature = "mkl-threaded", feature = "openblas")))]
    let _ = threads;
}

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod channel_lanes;
#[cfg(target_arch = "x86_64")]
pub(crate) use channel_lanes::ChannelLanesShape;
/// The geometry of [`conv_channel_lanes`] (see `channel_lanes.rs`).
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug)]
pub struct ChannelLanesShape {
    pub images: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub in_size: [usize; 2],
    pub pad: [usize; 2],
    pub padded: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub out_size: [usize; 2],
}
#[cfg(any(feature = "mkl", feature = "mkl-threaded", feature = "openblas"))]
mod cblas;
#[cfg(target_arch = "x86_64")]
mod correlate;
#[cfg(target_arch = "x86_64")]
mod depthwise;
#[cfg(target_arch = "x86_64")]
pub(crate) use depthwise::DepthwiseShape;
/// The sizes of one plane of [`depthwise`] (see `depthwise.rs`).
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseShape {
    pub row_len: usize,
    pub out_height: usize,
    pub out_width: usize,
    pub kernel: [usize; 2],
    pub dilation: [usize; 2],
}
mod matrixmultiply;
#[cfg(target_arch = "x86_64")]
mod shifted;
#[cfg(target_arch = "x86_64")]
pub(crate) use shifted::{Batch, Run};
/// A run of columns of [`gemm_shifted`] (see `shifted.rs`).
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub load: usize,
    pub store: usize,
    pub len: usize,
}
/// Images of [`gemm_shifted_batch`] (see `shifted.rs`).
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub images: usize,
    pub data_step: usize,
    pub c_step: usize,
}
mod skinny;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::ops::{Add, Mul};

/// Element types the GEMM handles: `f32` and `f64`.
///
/// The trait is sealed: the backends have a kernel for exactly these types.
pub trait GemmElement:
    sealed::Kernels + Copy + Send + Sync + 'static + Debug + PartialEq + Mul<Output = Self> + Add<Output = Self>
{
    /// The additive identity, `0.0`.
    const ZERO: Self;
    /// The multiplicative identity, `1.0`.
    const ONE: Self;
}

impl GemmElement for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl GemmElement for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// The per-type entry points of each backend. Private to the crate: nothing outside can
/// name this trait, so nothing outside can implement [`GemmElement`] or call these.
mod sealed {
    use super::{Batch, ChannelLanesShape, DepthwiseShape, MatrixMut, MatrixRef, Run};

    pub trait Kernels: Sized {
        /// `avx512::gemm`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        fn avx512(
            m: usize,
            k: usize,
            n: usize,
            alpha: Self,
            a: MatrixRef<'_, Self>,
            b: MatrixRef<'_, Self>,
            beta: Self,
            c: MatrixMut<'_, Self>,
        );

        /// `shifted::gemm`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        fn shifted(
            m: usize,
            a: &MatrixRef<'_, Self>,
            data: &[Self],
            offsets: &[usize],
            runs: &[Run],
            c: &mut [Self],
            ldc: usize,
            batch: Batch,
        );

        /// `correlate::correlate`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        fn correlate(
            data: &[Self],
            offsets: &[usize],
            rows: usize,
            width: usize,
            row_len: usize,
            b: &[Self],
            ldb: usize,
            c: &mut [Self],
        );

        /// `depthwise::copy_rows`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        fn copy_rows(src: &[Self], src_stride: usize, dst: &mut [Self], dst_stride: usize, rows: usize, width: usize);

        /// `depthwise::depthwise_filter_grad`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        fn depthwise_filter_grad(shape: &DepthwiseShape, plane: &[Self], grad: &[Self], sums: &mut [Self]);

        /// `depthwise::depthwise`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        fn depthwise(shape: &DepthwiseShape, plane: &[Self], taps: &[Self], bias: Self, out: &mut [Self]);

        /// `channel_lanes::conv`, with the same contract.
        #[cfg(target_arch = "x86_64")]
        fn channel_lanes(shape: &ChannelLanesShape, input: &[Self], weight: &MatrixRef<'_, Self>, out: &mut [Self]);

        /// `matrixmultiply::{s,d}gemm`.
        ///
        /// # Safety
        /// As for `matrixmultiply::sgemm`: every element the dimensions and strides
        /// address is inside the allocation behind `a`, `b` and `c`; the elements of `c`
        /// do not alias each other nor `a` or `b`.
        #[allow(clippy::too_many_arguments)]
        unsafe fn matrixmultiply(
            m: usize,
            k: usize,
            n: usize,
            alpha: Self,
            a: *const Self,
            rsa: isize,
            csa: isize,
            b: *const Self,
            rsb: isize,
            csb: isize,
            beta: Self,
            c: *mut Self,
            rsc: isize,
            csc: isize,
        );

        /// `cblas_{s,d}gemm` with `CblasRowMajor`.
        ///
        /// # Safety
        /// As for CBLAS: `op(a)` is `m×k`, `op(b)` is `k×n`, `c` is `m×n`, all row-major
        /// with the given leading dimensions (each at least the row length, and at
        /// least 1), every element addressed lies inside its allocation, and `c` does
        /// not overlap `a` or `b`.
        #[cfg(any(feature = "mkl", feature = "mkl-threaded", feature = "openblas"))]
        #[allow(clippy::too_many_arguments)]
        unsafe fn cblas(
            transa: cblas_sys::CBLAS_TRANSPOSE,
            transb: cblas_sys::CBLAS_TRANSPOSE,
            m: i32,
            n: i32,
            k: i32,
            alpha: Self,
            a: *const Self,
            lda: i32,
            b: *const Self,
            ldb: i32,
            beta: Self,
            c: *mut Self,
            ldc: i32,
        );
    }

    macro_rules! kernels {
        ($t:ty, $mm:ident, $cblas:ident) => {
            impl Kernels for $t {
                #[cfg(target_arch = "x86_64")]
                fn avx512(
                    m: usize,
                    k: usize,
                    n: usize,
                    alpha: Self,
                    a: MatrixRef<'_, Self>,
                    b: MatrixRef<'_, Self>,
                    beta: Self,
                    c: MatrixMut<'_, Self>,
                ) {
                    super::avx512::gemm(m, k, n, alpha, a, b, beta, c);
                }

                #[cfg(target_arch = "x86_64")]
                fn shifted(
                    m: usize,
                    a: &MatrixRef<'_, Self>,
                    data: &[Self],
                    offsets: &[usize],
                    runs: &[Run],
                    c: &mut [Self],
                    ldc: usize,
                    batch: Batch,
                ) {
                    super::shifted::gemm(m, a, data, offsets, runs, c, ldc, batch);
                }

                #[cfg(target_arch = "x86_64")]
                fn correlate(
                    data: &[Self],
                    offsets: &[usize],
                    rows: usize,
                    width: usize,
                    row_len: usize,
                    b: &[Self],
                    ldb: usize,
                    c: &mut [Self],
                ) {
                    super::correlate::correlate(data, offsets, rows, width, row_len, b, ldb, c);
                }

                #[cfg(target_arch = "x86_64")]
                fn copy_rows(
                    src: &[Self],
                    src_stride: usize,
                    dst: &mut [Self],
                    dst_stride: usize,
                    rows: usize,
                    width: usize,
                ) {
                    super::depthwise::copy_rows(src, src_stride, dst, dst_stride, rows, width);
                }

                #[cfg(target_arch = "x86_64")]
                fn depthwise_filter_grad(shape: &DepthwiseShape, plane: &[Self], grad: &[Self], sums: &mut [Self]) {
                    super::depthwise::depthwise_filter_grad(shape, plane, grad, sums);
                }

                #[cfg(target_arch = "x86_64")]
                fn depthwise(shape: &DepthwiseShape, plane: &[Self], taps: &[Self], bias: Self, out: &mut [Self]) {
                    super::depthwise::depthwise(shape, plane, taps, bias, out);
                }

                #[cfg(target_arch = "x86_64")]
                fn channel_lanes(
                    shape: &ChannelLanesShape,
                    input: &[Self],
                    weight: &MatrixRef<'_, Self>,
                    out: &mut [Self],
                ) {
                    super::channel_lanes::conv(shape, input, weight, out);
                }

                unsafe fn matrixmultiply(
                    m: usize,
                    k: usize,
                    n: usize,
                    alpha: Self,
                    a: *const Self,
                    rsa: isize,
                    csa: isize,
                    b: *const Self,
                    rsb: isize,
                    csb: isize,
                    beta: Self,
                    c: *mut Self,
                    rsc: isize,
                    csc: isize,
                ) {
                    // SAFETY: the caller upholds `matrixmultiply`'s contract, which is
                    // this function's contract.
                    unsafe { ::matrixmultiply::$mm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
                }

                #[cfg(any(feature = "mkl", feature = "mkl-threaded", feature = "openblas"))]
                unsafe fn cblas(
                    transa: cblas_sys::CBLAS_TRANSPOSE,
                    transb: cblas_sys::CBLAS_TRANSPOSE,
                    m: i32,
                    n: i32,
                    k: i32,
                    alpha: Self,
                    a: *const Self,
                    lda: i32,
                    b: *const Self,
                    ldb: i32,
                    beta: Self,
                    c: *mut Self,
                    ldc: i32,
                ) {
                    // SAFETY: the caller upholds CBLAS's contract, which is this
                    // function's contract.
                    unsafe {
                        cblas_sys::$cblas(
                            cblas_sys::CblasRowMajor,
                            transa,
                            transb,
                            m,
                            n,
                            k,
                            alpha,
                            a,
                            lda,
                            b,
                            ldb,
                            beta,
                            c,
                            ldc,
                        )
                    }
                }
            }
        };
    }

    kernels!(f32, sgemm, cblas_sgemm);
    kernels!(f64, dgemm, cblas_dgemm);
}

/// One input operand of a GEMM: its buffer and its strides in elements.
///
/// Element `(i, j)` is `data[i * row_stride + j * column_stride]`. Any layout works:
/// row-major (`column_stride == 1`), column-major or transposed views
/// (`row_stride == 1`), padded rows, arbitrary strides, and stride-0 broadcasts.
#[derive(Clone, Copy, Debug)]
pub struct MatrixRef<'a, E> {
    /// The buffer; it must hold every element the dimensions and strides address.
    pub data: &'a [E],
    /// Distance in elements between `(i, j)` and `(i + 1, j)`.
    pub row_stride: usize,
    /// Distance in elements between `(i, j)` and `(i, j + 1)`.
    pub column_stride: usize,
}

impl<'a, E> MatrixRef<'a, E> {
    /// An operand with the given strides.
    pub fn new(data: &'a [E], row_stride: usize, column_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            column_stride,
        }
    }

    /// The transposed view of the same buffer: the two strides swapped.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            row_stride: self.column_stride,
            column_stride: self.row_stride,
        }
    }
}

/// The output operand of a GEMM: its buffer and its strides in elements.
///
/// Element `(i, j)` is `data[i * row_stride + j * column_stride]`. Any layout works;
/// one with a unit stride is written in place, any other through a temporary. A layout
/// in which two elements share a place in memory is accepted (it is not unsound) but
/// what it then holds is unspecified.
#[derive(Debug)]
pub struct MatrixMut<'a, E> {
    /// The buffer; it must hold every element the dimensions and strides address.
    pub data: &'a mut [E],
    /// Distance in elements between `(i, j)` and `(i + 1, j)`.
    pub row_stride: usize,
    /// Distance in elements between `(i, j)` and `(i, j + 1)`.
    pub column_stride: usize,
}

impl<'a, E> MatrixMut<'a, E> {
    /// An output with the given strides.
    pub fn new(data: &'a mut [E], row_stride: usize, column_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            column_stride,
        }
    }

    /// The transposed view of the same buffer: the two strides swapped.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            row_stride: self.column_stride,
            column_stride: self.row_stride,
        }
    }
}

/// The implementations behind [`gemm`]. [`gemm`] runs [`Backend::chosen`];
/// [`gemm_with`] runs a given one, to compare them.
///
/// # Example
/// ```
/// use ferrograd_cpu::gemm::Backend;
///
/// let chosen = Backend::chosen();
/// assert!(chosen.is_available());
/// assert!(Backend::available().contains(&chosen));
/// assert!(Backend::MatrixMultiply.is_available()); // on every CPU, in every build
/// println!("matrix products run on {}", chosen.name());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// The BLAS library a feature chose (`mkl`, `mkl-threaded` or `openblas`), through
    /// CBLAS. Available only in builds with one of those features.
    Blas,
    /// ferrograd's own kernel, for x86-64 CPUs with AVX-512F. Available on those.
    Avx512,
    /// matrixmultiply: pure Rust, with AVX2/FMA kernels where the CPU has them.
    /// Available everywhere.
    MatrixMultiply,
}

impl Backend {
    /// The backend [`gemm`] uses in this build on this CPU: the BLAS library if a
    /// feature chose one, else [`Backend::Avx512`] where the CPU runs it, else
    /// [`Backend::MatrixMultiply`].
    pub fn chosen() -> Self {
        if Backend::Blas.is_available() {
            Backend::Blas
        } else if Backend::Avx512.is_available() {
            Backend::Avx512
        } else {
            Backend::MatrixMultiply
        }
    }

    /// Whether this build can run this backend on this CPU.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Blas => cfg!(any(feature = "mkl", feature = "mkl-threaded", feature = "openblas")),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => avx512::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx512 => false,
            Backend::MatrixMultiply => true,
        }
    }

    /// Every backend this build can run on this CPU.
    pub fn available() -> Vec<Self> {
        [Backend::Blas, Backend::Avx512, Backend::MatrixMultiply]
            .into_iter()
            .filter(|backend| backend.is_available())
            .collect()
    }

    /// `"openblas"`, `"mkl"` or `"mkl-threaded"` for [`Backend::Blas`] (`"blas"` in a
    /// build without a BLAS feature), `"avx512"`, `"matrixmultiply"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Blas if cfg!(feature = "openblas") => "openblas",
            Backend::Blas if cfg!(feature = "mkl-threaded") => "mkl-threaded",
            Backend::Blas if cfg!(feature = "mkl") => "mkl",
            Backend::Blas => "blas",
            Backend::Avx512 => "avx512",
            Backend::MatrixMultiply => "matrixmultiply",
        }
    }
}

/// The name of the backend [`gemm`] uses in this build on this CPU:
/// `Backend::chosen().name()`.
pub fn backend_name() -> &'static str {
    Backend::chosen().name()
}

/// `c = alpha · a·b + beta · c`, with `a`: `m×k`, `b`: `k×n`, `c`: `m×n`.
///
/// As in BLAS, when `beta` is zero `c` is overwritten without being read (a NaN in it
/// does not survive), and when `k` or `alpha` is zero `a` and `b` are not read and the
/// result is `beta · c`.
///
/// # Panics
/// If a slice is shorter than the largest offset its dimensions and strides address
/// (plus one). Callers guarantee this; the check makes the function sound for any
/// input.
///
/// # Example
/// ```
/// use ferrograd_cpu::gemm::{gemm, MatrixMut, MatrixRef};
///
/// let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3, row-major
/// let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2, row-major
/// let mut c = [0.0f32; 4];
/// gemm(
///     2, 3, 2,
///     1.0, MatrixRef::new(&a, 3, 1), MatrixRef::new(&b, 2, 1),
///     0.0, MatrixMut::new(&mut c, 2, 1),
/// );
/// assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gemm<E: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: MatrixRef<'_, E>,
    b: MatrixRef<'_, E>,
    beta: E,
    c: MatrixMut<'_, E>,
) {
    gemm_with(Backend::chosen(), m, k, n, alpha, a, b, beta, c);
}

/// [`gemm`] on the given backend rather than the chosen one.
///
/// # Panics
/// As [`gemm`], and if this build cannot run `backend` on this CPU (see
/// [`Backend::is_available`]).
///
/// # Example
/// ```
/// use ferrograd_cpu::gemm::{gemm_with, Backend, MatrixMut, MatrixRef};
///
/// let a = [1.0f64, 2.0, 3.0, 4.0]; // 2×2, row-major
/// for backend in Backend::available() {
///     let mut c = [0.0; 4];
///     gemm_with(
///         backend,
///         2, 2, 2,
///         1.0, MatrixRef::new(&a, 2, 1), MatrixRef::new(&a, 2, 1),
///         0.0, MatrixMut::new(&mut c, 2, 1),
///     );
///     assert_eq!(c, [7.0, 10.0, 15.0, 22.0], "{}", backend.name());
/// }
/// ```
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm_with<E: GemmElement>(
    backend: Backend,
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: MatrixRef<'_, E>,
    b: MatrixRef<'_, E>,
    beta: E,
    mut c: MatrixMut<'_, E>,
) {
    assert!(
        backend.is_available(),
        "gemm_with: the backend `{}` is not available in this build on this CPU (available: {:?})",
        backend.name(),
        Backend::available(),
    );
    check_len("a", m, k, a.data.len(), a.row_stride, a.column_stride);
    check_len("b", k, n, b.data.len(), b.row_stride, b.column_stride);
    check_len("c", m, n, c.data.len(), c.row_stride, c.column_stride);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == E::ZERO {
        scale(m, n, beta, c);
        return;
    }
    // A batch of one (and its weight gradient) streams the matrix once instead of
    // packing it; BLAS libraries have such paths of their own.
    let blas = matches!(backend, Backend::Blas);
    if !blas && (m == 1 || k == 1) && skinny::try_gemm(m, k, n, alpha, &a, &b, beta, &mut c) {
        return;
    }

    match backend {
        #[cfg(any(feature = "mkl", feature = "mkl-threaded", feature = "openblas"))]
        Backend::Blas => cblas::gemm(m, k, n, alpha, a, b, beta, c),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => E::avx512(m, k, n, alpha, a, b, beta, c),
        Backend::MatrixMultiply => matrixmultiply::gemm(m, k, n, alpha, a, b, beta, c),
        #[allow(unreachable_patterns)]
        _ => unreachable!("checked available above"),
    }
}

/// Whether [`gemm_shifted`] runs in this build on this CPU: where [`gemm`] uses our
/// AVX-512 kernel (a BLAS feature keeps every product on its library).
pub(crate) fn shifted_available() -> bool {
    Backend::chosen() == Backend::Avx512
}

/// `c[i·ldc + run.store + j] = Σ_p a[i, p] · data[offsets[p] + run.load + j]` for
/// `i < m`, each run of `runs`, `j < run.len` and `p < offsets.len()`, overwriting those
/// elements of `c` and no others: a product whose right-hand operand's rows are windows
/// of one buffer, which a stride-1 convolution reads from its input without im2col
/// (see `shifted.rs`).
///
/// # Panics
/// Unless [`shifted_available`]; if a slice is shorter than what the sizes address,
/// or if the runs overlap in `c`, come out of order, or reach past `ldc`.
// (The convolutions call `gemm_shifted_batch`; the tests, this one-image form.)
#[cfg(test)]
pub(crate) fn gemm_shifted<E: GemmElement>(
    m: usize,
    a: MatrixRef<'_, E>,
    data: &[E],
    offsets: &[usize],
    runs: &[Run],
    c: &mut [E],
    ldc: usize,
) {
    let one = Batch {
        images: 1,
        data_step: 0,
        c_step: 0,
    };
    gemm_shifted_batch(m, a, data, offsets, runs, c, ldc, one);
}

/// [`gemm_shifted`] for `batch.images` operands, the `n`-th reading `data` from `n ·
/// batch.data_step` and writing `c` from `n · batch.c_step`, with one `a`: packed once,
/// and with tiles that run on from one image into the next.
///
/// # Panics
/// As [`gemm_shifted`], and if the images' outputs overlap.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_shifted_batch<E: GemmElement>(
    m: usize,
    a: MatrixRef<'_, E>,
    data: &[E],
    offsets: &[usize],
    runs: &[Run],
    c: &mut [E],
    ldc: usize,
    batch: Batch,
) {
    assert!(shifted_available(), "gemm_shifted: needs the AVX-512 backend");
    #[cfg(target_arch = "x86_64")]
    E::shifted(m, &a, data, offsets, runs, c, ldc, batch);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (m, a, data, offsets, runs, c, ldc, batch);
}

/// `c[t·ldb + o] += Σ_{y < rows, x < width} data[offsets[t] + y·row_len + x] ·
/// b[(y·width + x)·ldb + o]` for `t < offsets.len()` and `o < ldb`: a product whose left operand's
/// rows are windows of one buffer, summed along them, as a stride-1 convolution's
/// weight gradient reads its input (see `correlate.rs`). Runs where
/// [`gemm_shifted`] does.
///
/// # Panics
/// Unless [`shifted_available`]; unless `ldb` is a multiple of 64 bytes' elements; if
/// `b` or `c` is too short, a window reaches past the end of `data`, or `width >
/// row_len`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn correlate<E: GemmElement>(
    data: &[E],
    offsets: &[usize],
    rows: usize,
    width: usize,
    row_len: usize,
    b: &[E],
    ldb: usize,
    c: &mut [E],
) {
    assert!(shifted_available(), "correlate: needs the AVX-512 backend");
    #[cfg(target_arch = "x86_64")]
    E::correlate(data, offsets, rows, width, row_len, b, ldb, c);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, offsets, rows, width, row_len, b, ldb, c);
}

/// Copies `rows` rows of `width` elements, `src_stride` apart in `src`, to rows
/// `dst_stride` apart in `dst`, with vector loads and stores where the CPU has
/// AVX-512F (short rows through `copy_from_slice` are a call to `memmove` each).
///
/// # Panics
/// If a row reaches past the end of `src` or `dst`.
pub(crate) fn copy_rows<E: GemmElement>(
    src: &[E],
    src_stride: usize,
    dst: &mut [E],
    dst_stride: usize,
    rows: usize,
    width: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        E::copy_rows(src, src_stride, dst, dst_stride, rows, width);
        return;
    }
    for row in 0..rows {
        let from = &src[row * src_stride..row * src_stride + width];
        dst[row * dst_stride..row * dst_stride + width].copy_from_slice(from);
    }
}

/// The filter's gradient of one plane of [`depthwise`]: `sums[i·kw + j] += Σ_{y,x}
/// grad[y·out_width + x] · plane[(y + i·dh)·row_len + x + j·dw]`.
///
/// # Panics
/// As [`depthwise`], with `sums` for `taps` and `grad` for `out`.
pub(crate) fn depthwise_filter_grad<E: GemmElement>(shape: &DepthwiseShape, plane: &[E], grad: &[E], sums: &mut [E]) {
    assert!(shifted_available(), "depthwise: needs the AVX-512 backend");
    #[cfg(target_arch = "x86_64")]
    E::depthwise_filter_grad(shape, plane, grad, sums);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (shape, plane, grad, sums);
}

/// One plane of a stride-1 depthwise convolution: `out[y·out_width + x] = bias +
/// Σ_{i,j} taps[i·kw + j] · plane[(y + i·dh)·row_len + x + j·dw]`, overwriting `out`'s
/// first `out_height · out_width` elements (see `depthwise.rs`). Runs where
/// [`gemm_shifted`] does.
///
/// # Panics
/// Unless [`shifted_available`]; if `taps` is not `kh · kw` long, a row is shorter
/// than the windows read from it, or `plane` or `out` is too short.
pub(crate) fn depthwise<E: GemmElement>(shape: &DepthwiseShape, plane: &[E], taps: &[E], bias: E, out: &mut [E]) {
    assert!(shifted_available(), "depthwise: needs the AVX-512 backend");
    #[cfg(target_arch = "x86_64")]
    E::depthwise(shape, plane, taps, bias, out);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (shape, plane, taps, bias, out);
}

/// `out[n][o][y][x] = Σ_{c,i,j} weight[o][c·kh·kw + i·kw + j] · input[n][y·sh +
/// i·dh][x·sw + j·dw][c]`, overwriting `out`: a convolution of a padded channels-last
/// input with the output channels in the vector lanes, for small maps (see
/// `channel_lanes.rs`). Runs where [`shifted_available`].
///
/// # Panics
/// Unless [`shifted_available`]; if a slice is shorter than `shape` says, or if a
/// window reaches past the padded input.
pub(crate) fn conv_channel_lanes<E: GemmElement>(
    shape: &ChannelLanesShape,
    input: &[E],
    weight: MatrixRef<'_, E>,
    out: &mut [E],
) {
    assert!(shifted_available(), "conv_channel_lanes: needs the AVX-512 backend");
    #[cfg(target_arch = "x86_64")]
    E::channel_lanes(shape, input, &weight, out);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (shape, input, weight, out);
}

/// Panics unless a slice of `len` elements holds every element of a `rows×cols` matrix
/// with strides `rs`, `cs`.
#[track_caller]
fn check_len(name: &str, rows: usize, cols: usize, len: usize, rs: usize, cs: usize) {
    let needed = required_len(rows, cols, rs, cs);
    assert!(
        needed.is_some_and(|needed| needed <= len),
        "gemm: operand `{name}` ({rows}×{cols}, strides ({rs}, {cs})) needs {} elements, \
         its slice holds {len}",
        needed.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string()),
    );
}

/// One past the largest offset a `rows×cols` matrix with strides `rs`, `cs` addresses
/// (0 when it is empty), or `None` if that overflows `usize`.
fn required_len(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

/// `c = beta · c`, writing zeros when `beta` is zero (as BLAS does, so NaN is dropped).
fn scale<E: GemmElement>(m: usize, n: usize, beta: E, c: MatrixMut<'_, E>) {
    if beta == E::ONE {
        return;
    }
    for i in 0..m {
        for j in 0..n {
            let x = &mut c.data[i * c.row_stride + j * c.column_stride];
            *x = if beta == E::ZERO { E::ZERO } else { beta * *x };
        }
    }
}

/// Whether distinct elements of a `rows×cols` matrix with strides `rs`, `cs` lie at
/// distinct offsets. Conservative: `true` guarantees it; a few exotic interleaved
/// layouts that are in fact injective answer `false`.
fn is_non_overlapping(rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    let ((s1, d1), (s2, _)) = if rows <= 1 {
        ((cs, cols), (usize::MAX, 1))
    } else if cols <= 1 {
        ((rs, rows), (usize::MAX, 1))
    } else if rs <= cs {
        ((rs, rows), (cs, cols))
    } else {
        ((cs, cols), (rs, rows))
    };
    (d1 <= 1 || s1 >= 1) && s1.checked_mul(d1).is_some_and(|extent| s2 >= extent)
}

/// Copies a `rows×cols` operand into a new contiguous row-major buffer.
fn pack<E: GemmElement>(rows: usize, cols: usize, x: &MatrixRef<'_, E>) -> Vec<E> {
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        out.extend((0..cols).map(|j| x.data[i * x.row_stride + j * x.column_stride]));
    }
    out
}

/// Runs `f` on a contiguous row-major temporary standing in for `c` (holding `c`'s
/// values unless `beta` is zero), then copies the temporary back into `c`.
fn via_temporary<E: GemmElement>(m: usize, n: usize, beta: E, c: MatrixMut<'_, E>, f: impl FnOnce(MatrixMut<'_, E>)) {
    let mut tmp = if beta == E::ZERO {
        vec![E::ZERO; m * n]
    } else {
        pack(m, n, &MatrixRef::new(c.data, c.row_stride, c.column_stride))
    };
    f(MatrixMut::new(&mut tmp, n, 1));
    for i in 0..m {
        for j in 0..n {
            c.data[i * c.row_stride + j * c.column_stride] = tmp[i * n + j];
        }
    }
}
