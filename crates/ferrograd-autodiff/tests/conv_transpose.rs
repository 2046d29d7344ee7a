//! conv_transpose2d / conv_transpose1d and conv1d: gradients of the input, the weight
//! and the bias against finite differences in f64 across strides, paddings, output
//! paddings (past the stride, below the dilation, included), dilations and groups;
//! forward values against a direct scatter written here from the definition; views;
//! one image; const shapes; and the errors.

mod common;

use common::{GradCheck, assert_close, numerical_gradient, weighted_sum, weights};
use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{Conv1dOptions, ConvTranspose1dOptions, ConvTranspose2dOptions, Padding1d};
use ferrograd_testing::{TestDevice, test_device};

type Dims4 = (usize, usize, usize, usize);
type Image = Tensor<Dims4, f64, TestDevice>;
type Dims3 = (usize, usize, usize);
type Seq = Tensor<Dims3, f64, TestDevice>;

fn tensor(dims: [usize; 4], seed: u64) -> Image {
    test_device().tensor_from_vec(
        weights(dims.iter().product(), seed),
        (dims[0], dims[1], dims[2], dims[3]),
    )
}

fn seq(dims: [usize; 3], seed: u64) -> Seq {
    test_device().tensor_from_vec(weights(dims.iter().product(), seed), (dims[0], dims[1], dims[2]))
}

fn bias(len: usize, seed: u64) -> Tensor<(usize,), f64, TestDevice> {
    test_device().tensor_from_vec(weights(len, seed), (len,))
}

/// The transposed convolution by its definition: each input pixel scatters the kernel
/// times its value, `out[n, g·og + o, y·s - p + i·d, x·s - p + j·d] += x[n, c, y, x] ·
/// w[c, o, i, j]` for the channels `c` of group `g`, into an output of PyTorch's size.
fn direct(x: &Image, w: &Image, b: Option<&[f64]>, o: ConvTranspose2dOptions) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wd] = x.dims();
    let [_, og, kh, kw] = w.dims();
    let (xv, wv) = (x.as_vec(), w.as_vec());
    let g = o.groups;
    let co = og * g;
    let size = |len: usize, axis: usize, k: usize| {
        (len - 1) * o.stride[axis] + o.dilation[axis] * (k - 1) + o.output_padding[axis] + 1 - 2 * o.padding[axis]
    };
    let (oh, ow) = (size(h, 0, kh), size(wd, 1, kw));
    let mut out = vec![0.0; n * co * oh * ow];
    for b_ in 0..n {
        for ci in 0..c {
            let group = ci / (c / g);
            for y in 0..h {
                for xx in 0..wd {
                    let v = xv[((b_ * c + ci) * h + y) * wd + xx];
                    for oc in 0..og {
                        for i in 0..kh {
                            for j in 0..kw {
                                let oy = (y * o.stride[0] + i * o.dilation[0]) as isize - o.padding[0] as isize;
                                let ox = (xx * o.stride[1] + j * o.dilation[1]) as isize - o.padding[1] as isize;
                                if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                    continue;
                                }
                                let f = group * og + oc;
                                out[((b_ * co + f) * oh + oy as usize) * ow + ox as usize] +=
                                    v * wv[((ci * og + oc) * kh + i) * kw + j];
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = b {
        for (k, v) in out.iter_mut().enumerate() {
            *v += b[(k / (oh * ow)) % co];
        }
    }
    (out, [n, co, oh, ow])
}

fn loss_value(x: Image, w: Image, b: Option<Tensor<(usize,), f64, TestDevice>>, o: ConvTranspose2dOptions) -> f64 {
    weighted_sum(x.conv_transpose2d(w, b, o)).array()
}

/// Checks the forward pass against `direct` and d loss / d input, weight and bias
/// against five-point finite differences.
fn check(input: [usize; 4], weight: [usize; 4], options: ConvTranspose2dOptions, with_bias: bool) {
    let what = format!("input {input:?}, weight {weight:?}, {options:?}, bias {with_bias}");
    let x = tensor(input, 1);
    let w = tensor(weight, 2);
    let b = with_bias.then(|| bias(weight[1] * options.groups, 3));

    let y = x.leaky_trace().conv_transpose2d(w.clone(), b.clone(), options);
    let (expected, dims) = direct(&x, &w, b.as_ref().map(|b| b.as_vec()).as_deref(), options);
    assert_eq!(y.dims(), dims, "{what}: dims");
    assert_close(&y.as_vec(), &expected, 1e-13, 1e-13, &format!("{what}: forward"));

    let grads = weighted_sum(y).backward();
    let opts = GradCheck::default();
    let numerical = numerical_gradient(&x, opts.step, |x| loss_value(x, w.clone(), b.clone(), options));
    assert_close(
        &grads.get(&x).as_vec(),
        &numerical,
        opts.rel,
        opts.abs,
        &format!("{what}: d input"),
    );
    let numerical = numerical_gradient(&w, opts.step, |w| loss_value(x.clone(), w, b.clone(), options));
    assert_close(
        &grads.get(&w).as_vec(),
        &numerical,
        opts.rel,
        opts.abs,
        &format!("{what}: d weight"),
    );
    if let Some(b) = &b {
        let numerical = numerical_gradient(b, opts.step, |b| loss_value(x.clone(), w.clone(), Some(b), options));
        assert_close(
            &grads.get(b).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{what}: d bias"),
        );
    }
}

#[test]
fn conv_transpose2d_matches_its_definition_and_finite_differences() {
    let o = ConvTranspose2dOptions::default;
    check([2, 3, 4, 5], [3, 2, 3, 2], o(), true);
    check([1, 2, 3, 4], [2, 3, 3, 3], o().stride(2), true);
    check(
        [2, 2, 3, 3],
        [2, 2, 3, 2],
        o().stride((2, 3)).padding((1, 0)).output_padding((1, 2)),
        true,
    );
    check([1, 2, 4, 3], [2, 1, 3, 3], o().padding(1).dilation((2, 1)), false);
    // Output padding past the stride, below the dilation: the last rows get only the bias.
    check([1, 1, 3, 4], [1, 2, 2, 2], o().dilation(3).output_padding(2), true);
    check(
        [1, 2, 3, 3],
        [2, 1, 2, 3],
        o().stride(2).dilation(3).output_padding((2, 1)).padding(1),
        true,
    );
    // Padding larger than the output padding, and than a stride.
    check(
        [1, 2, 5, 4],
        [2, 2, 4, 4],
        o().stride(2).padding(2).output_padding(1),
        true,
    );
    check([2, 4, 3, 3], [4, 3, 3, 3], o().groups(2).stride(2).padding(1), true);
    // Depthwise.
    check([1, 3, 4, 4], [3, 1, 3, 3], o().groups(3).stride((1, 2)), true);
    check([2, 2, 3, 2], [2, 3, 1, 1], o(), true);
    check([1, 1, 2, 2], [1, 1, 1, 1], o().stride(3).output_padding(2), true);
}

/// One image without a batch axis gives the batch-of-one result, and a permuted
/// (channels-last) input or weight reaches the kernels as strides, with gradients of
/// the underlying buffers those of contiguous copies.
#[test]
fn conv_transpose2d_one_image_and_views() {
    let dev = test_device();
    let options = ConvTranspose2dOptions::default().stride(2).padding(1).output_padding(1);
    let x: Tensor<Rank3<2, 3, 4>, f64, _> = dev.tensor_from_vec(weights(24, 4), Default::default());
    let w: Tensor<Rank4<2, 3, 3, 3>, f64, _> = dev.tensor_from_vec(weights(54, 5), Default::default());
    let single = x.leaky_trace().conv_transpose2d(w.clone(), None, options);
    let batched = tensor([1, 2, 3, 4], 4).conv_transpose2d(w.clone().realize::<Dims4>(), None, options);
    assert_close(&single.as_vec(), &batched.as_vec(), 0.0, 0.0, "one image");

    let nhwc: Tensor<Rank4<2, 4, 5, 3>, f64, _> = dev.tensor_from_vec(weights(120, 6), Default::default());
    let loss = |x: Tensor<Rank4<2, 3, 4, 5>, f64, TestDevice, _>, w| weighted_sum(x.conv_transpose2d(w, None, options));
    // (C_IN, KH, KW, C_OUT) → (C_IN, C_OUT, KH, KW)
    let w_last: Tensor<Rank4<3, 2, 3, 2>, f64, _> = dev.tensor_from_vec(weights(36, 7), Default::default());
    let view_loss = loss(
        nhwc.leaky_trace().permute::<Axes4<0, 3, 1, 2>>(),
        w_last.leaky_trace().permute::<Axes4<0, 3, 1, 2>>(),
    );
    let view_value = view_loss.array();
    let grads = view_loss.backward();
    let x_copy = nhwc.clone().permute::<Axes4<0, 3, 1, 2>>().contiguous();
    let w_copy = w_last.clone().permute::<Axes4<0, 3, 1, 2>>().contiguous();
    let copy_loss = loss(x_copy.leaky_trace(), w_copy.leaky_trace());
    assert!((copy_loss.array() - view_value).abs() < 1e-12, "forward");
    let copy_grads = copy_loss.backward();
    let back = copy_grads
        .get(&x_copy)
        .permute::<Axes4<0, 2, 3, 1>>()
        .contiguous()
        .as_vec();
    assert_close(&grads.get(&nhwc).as_vec(), &back, 1e-12, 1e-12, "d input");
    let back = copy_grads
        .get(&w_copy)
        .permute::<Axes4<0, 2, 3, 1>>()
        .contiguous()
        .as_vec();
    assert_close(&grads.get(&w_last).as_vec(), &back, 1e-12, 1e-12, "d weight");
}

/// Const batch and channels keep their types; a grouped weight names its second dim
/// `usize`, and a const one with groups > 1 is an error naming the channels.
#[test]
fn conv_transpose2d_const_shapes_and_groups() {
    let dev = test_device();
    let x: Tensor<Rank4<2, 4, 3, 3>, f32, _> = dev.sample_normal();
    let w: Tensor<Rank4<4, 6, 2, 2>, f32, _> = dev.sample_normal();
    let b: Tensor<Rank1<6>, f32, _> = dev.sample_normal();
    let options = ConvTranspose2dOptions::default().stride(2);
    let y: Tensor<(Const<2>, Const<6>, usize, usize), f32, _> = x.clone().conv_transpose2d(w.clone(), Some(b), options);
    assert_eq!(y.realize::<Rank4<2, 6, 6, 6>>().dims(), [2, 6, 6, 6]);

    let grouped: Tensor<(Const<4>, usize, Const<2>, Const<2>), f32, _> =
        dev.sample_normal_like(&(Const, 3, Const, Const));
    let z = x.clone().conv_transpose2d(grouped, None, options.groups(2));
    assert_eq!(z.dims(), [2, 6, 6, 6]);

    let error = x.try_conv_transpose2d(w, None, options.groups(2)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "conv_transpose2d: 2 groups give 12 output channels, but the weight's second dim is the const 6, which names the output's channels; name it `usize` for groups > 1"
    );
}

#[test]
fn conv_transpose_errors_name_the_sizes() {
    let err =
        |x: Image, w: Image, o: ConvTranspose2dOptions| x.try_conv_transpose2d(w, None, o).unwrap_err().to_string();
    let o = ConvTranspose2dOptions::default;
    assert_eq!(
        err(tensor([1, 3, 4, 4], 1), tensor([2, 3, 3, 3], 2), o()),
        "conv_transpose2d: the input (1, 3, 4, 4) has 3 channels, but the weight (2, 3, 3, 3) (in_channels, out_channels / groups, kH, kW) expects 2"
    );
    assert_eq!(
        err(
            tensor([1, 2, 4, 4], 1),
            tensor([2, 3, 3, 3], 2),
            o().stride(2).output_padding(2)
        ),
        "conv_transpose2d: the output padding [2, 2] must be smaller than the stride [2, 2] or the dilation [1, 1] on each axis"
    );
    assert_eq!(
        err(tensor([1, 3, 4, 4], 1), tensor([3, 1, 3, 3], 2), o().groups(2)),
        "conv_transpose2d: 2 groups do not divide the input's 3 channels"
    );
    assert_eq!(
        err(tensor([1, 2, 1, 1], 1), tensor([2, 3, 2, 2], 2), o().padding(1)),
        "conv_transpose2d: the padding [1, 1] cuts the whole output (2, 2) of the input (1, 2, 1, 1) and the weight (2, 3, 2, 2) (it must be less than half of each)"
    );
    let message = tensor([1, 2, 4, 4], 1)
        .try_conv_transpose2d(tensor([2, 3, 3, 3], 2), Some(bias(2, 3)), o())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "conv_transpose2d: the bias has shape (2,) where (3,) was expected"
    );
    let panic = std::panic::catch_unwind(|| {
        tensor([1, 3, 4, 4], 1).conv_transpose2d(tensor([3, 1, 3, 3], 2), None, o().groups(2))
    })
    .unwrap_err();
    assert_eq!(
        panic.downcast_ref::<String>().map(String::as_str),
        Some("conv_transpose2d: 2 groups do not divide the input's 3 channels")
    );
    // The 1-d ops give the 2-d op's messages under their own names.
    let message = seq([1, 3, 4], 1)
        .try_conv_transpose1d(seq([2, 3, 3], 2), None, ConvTranspose1dOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "conv_transpose1d: the input (1, 3, 1, 4) has 3 channels, but the weight (2, 3, 1, 3) (in_channels, out_channels / groups, kH, kW) expects 2"
    );
    let message = seq([1, 2, 2], 1)
        .try_conv1d(seq([3, 2, 3], 2), None, Conv1dOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "conv1d: the kernel (1, 3) (dilated: (1, 3)) is larger than the padded input (1, 2)"
    );
}

/// conv1d and conv_transpose1d are the 2-d ops on a height of 1: their values and
/// gradients are those of the 2-d ops on the same data with a height axis, and their
/// gradients match finite differences.
#[test]
fn one_d_ops_are_the_2d_ops_with_height_1() {
    let height1 = |t: &Seq| {
        let [a, b, l] = t.dims();
        test_device().tensor_from_vec(t.as_vec(), (a, b, 1, l))
    };
    let opts = GradCheck::default();
    for (x_dims, w_dims, stride, padding, dilation, groups) in [
        ([2, 3, 7], [4, 3, 3], 1, Padding1d::Valid, 1, 1),
        ([1, 4, 9], [6, 2, 2], 2, Padding1d::Symmetric(1), 2, 2),
        ([2, 2, 6], [3, 2, 4], 1, Padding1d::Same, 1, 1),
        ([1, 3, 8], [3, 1, 3], 3, Padding1d::Explicit { left: 2, right: 0 }, 1, 3),
    ] {
        let (x, w, b) = (seq(x_dims, 1), seq(w_dims, 2), bias(w_dims[0], 3));
        let options = Conv1dOptions::default()
            .stride(stride)
            .padding(padding)
            .dilation(dilation)
            .groups(groups);
        let y = x.leaky_trace().conv1d(w.clone(), Some(b.clone()), options);
        let pad2 = match padding {
            Padding1d::Valid => ferrograd_autodiff::Padding::Valid,
            Padding1d::Same => ferrograd_autodiff::Padding::Same,
            Padding1d::Symmetric(p) => ferrograd_autodiff::Padding::Symmetric(0, p),
            Padding1d::Explicit { left, right } => ferrograd_autodiff::Padding::Explicit {
                top: 0,
                bottom: 0,
                left,
                right,
            },
        };
        let options2 = ferrograd_autodiff::Conv2dOptions::default()
            .stride((1, stride))
            .padding(pad2)
            .dilation((1, dilation))
            .groups(groups);
        let y2 = height1(&x).conv2d(height1(&w), Some(b.clone()), options2);
        assert_close(&y.as_vec(), &y2.as_vec(), 0.0, 0.0, &format!("{options:?}: forward"));
        let grads = weighted_sum(y).backward();
        let value = |x: Seq, w: Seq, b| weighted_sum(x.conv1d(w, Some(b), options)).array();
        let numerical = numerical_gradient(&x, opts.step, |x| value(x, w.clone(), b.clone()));
        assert_close(
            &grads.get(&x).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{options:?}: d input"),
        );
        let numerical = numerical_gradient(&w, opts.step, |w| value(x.clone(), w, b.clone()));
        assert_close(
            &grads.get(&w).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{options:?}: d weight"),
        );
        let numerical = numerical_gradient(&b, opts.step, |b| value(x.clone(), w.clone(), b));
        assert_close(
            &grads.get(&b).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{options:?}: d bias"),
        );
    }

    for (x_dims, w_dims, options) in [
        ([2, 3, 5], [3, 2, 3], ConvTranspose1dOptions::default()),
        (
            [1, 4, 4],
            [4, 1, 3],
            ConvTranspose1dOptions::default()
                .stride(2)
                .padding(1)
                .output_padding(1)
                .groups(2),
        ),
        (
            [1, 2, 3],
            [2, 2, 2],
            ConvTranspose1dOptions::default().dilation(3).output_padding(2),
        ),
    ] {
        let (x, w, b) = (seq(x_dims, 4), seq(w_dims, 5), bias(w_dims[1] * options.groups, 6));
        let y = x.leaky_trace().conv_transpose1d(w.clone(), Some(b.clone()), options);
        let options2 = ConvTranspose2dOptions::default()
            .stride((1, options.stride))
            .padding((0, options.padding))
            .output_padding((0, options.output_padding))
            .dilation((1, options.dilation))
            .groups(options.groups);
        let y2 = height1(&x).conv_transpose2d(height1(&w), Some(b.clone()), options2);
        assert_close(&y.as_vec(), &y2.as_vec(), 0.0, 0.0, &format!("{options:?}: forward"));
        let grads = weighted_sum(y).backward();
        let value = |x: Seq, w: Seq, b| weighted_sum(x.conv_transpose1d(w, Some(b), options)).array();
        let numerical = numerical_gradient(&x, opts.step, |x| value(x, w.clone(), b.clone()));
        assert_close(
            &grads.get(&x).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{options:?}: d input"),
        );
        let numerical = numerical_gradient(&w, opts.step, |w| value(x.clone(), w, b.clone()));
        assert_close(
            &grads.get(&w).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{options:?}: d weight"),
        );
        let numerical = numerical_gradient(&b, opts.step, |b| value(x.clone(), w.clone(), b));
        assert_close(
            &grads.get(&b).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{options:?}: d bias"),
        );
    }

    // One sequence without a batch axis, const channels.
    let dev = test_device();
    let x: Tensor<Rank2<3, 6>, f64, _> = dev.tensor_from_vec(weights(18, 7), Default::default());
    let w: Tensor<Rank3<5, 3, 2>, f64, _> = dev.tensor_from_vec(weights(30, 8), Default::default());
    let y: Tensor<(Const<5>, usize), f64, _> = x.clone().conv1d(w.clone(), None, Conv1dOptions::default());
    let batched = seq([1, 3, 6], 7).conv1d(w.realize::<Dims3>(), None, Conv1dOptions::default());
    assert_close(&y.as_vec(), &batched.as_vec(), 0.0, 0.0, "one sequence");
    let wt: Tensor<Rank3<3, 4, 2>, f64, _> = dev.tensor_from_vec(weights(24, 9), Default::default());
    let z: Tensor<(Const<4>, usize), f64, _> = x.conv_transpose1d(wt, None, ConvTranspose1dOptions::default());
    assert_eq!(z.dims(), [4, 7]);
}
