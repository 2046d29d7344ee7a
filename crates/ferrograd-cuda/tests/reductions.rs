//! Reductions, softmax and indexing on the GPU against the CPU, on small random,
//! strided, broadcast and offset inputs, reduced over every set of axes.
//!
//! Every test needs a GPU: where `Cuda::new(0)` is an error (no driver, no GPU) it
//! prints why and passes, unless the environment variable `FERROGRAD_REQUIRE_GPU` is
//! set, where it fails. The kernels also need NVRTC (see the crate documentation).
//!
//! Sums (and what is built on them: means, variances, logsumexp, softmax) add in
//! another order on the GPU, so they are compared within a tolerance; maxima, minima,
//! their indices, gathers, and scatters of small integers are compared exactly.

use ferrograd_cpu::Cpu;
use ferrograd_cuda::Cuda;
use ferrograd_device::ops::index::{GatherKernel, OneHotKernel, ScatterAddKernel};
use ferrograd_device::ops::reduce::{
    ArgExtremumKernel, Extremum, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, Spread, SumKernel,
    VarianceKernel,
};
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::{Dtype, Error, Input, InputView, Layout, Storage, View, ViewMut};

/// GPU 0, or `None` after printing why the test is skipped.
fn gpu() -> Option<Cuda> {
    match Cuda::new(0) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() => {
            panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {e}")
        }
        Err(e) => {
            println!("skipped, no GPU: {e}");
            None
        }
    }
}

/// Every kernel these tests run, on either device.
trait Kernels<E: Dtype>:
    Storage<E>
    + Storage<usize>
    + SumKernel<E>
    + ExtremumKernel<E>
    + ArgExtremumKernel<E>
    + ExtremumWithIndicesKernel<E>
    + VarianceKernel<E>
    + LogSumExpKernel<E>
    + SoftmaxKernel<E>
    + GatherKernel<E>
    + ScatterAddKernel<E>
    + OneHotKernel<E>
{
}

impl<E: Dtype, D> Kernels<E> for D where
    D: Storage<E>
        + Storage<usize>
        + SumKernel<E>
        + ExtremumKernel<E>
        + ArgExtremumKernel<E>
        + ExtremumWithIndicesKernel<E>
        + VarianceKernel<E>
        + LogSumExpKernel<E>
        + SoftmaxKernel<E>
        + GatherKernel<E>
        + ScatterAddKernel<E>
        + OneHotKernel<E>
{
}

/// `n` numbers in [-4, 4) from `seed`, or whole numbers in [-2, 2] (`ties`), which
/// repeat within every group.
fn values<E: Dtype>(n: usize, seed: u64, ties: bool) -> Vec<E> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            E::from_f64(if ties { (u * 5.0).floor() - 2.0 } else { u * 8.0 - 4.0 })
        })
        .collect()
}

/// Inputs as (buffer length, layout): contiguous, transposed, broadcast both ways, an
/// offset slice, rows long enough for a warp and for a block, many short rows, a
/// permuted rank-4 view, and an empty one.
fn cases() -> Vec<(usize, Layout)> {
    vec![
        (24, Layout::from_parts(&[2, 3, 4], &[12, 4, 1])),
        (24, Layout::from_parts(&[4, 3, 2], &[1, 4, 12])),
        (4, Layout::from_parts(&[3, 4], &[0, 1])),
        (3, Layout::from_parts(&[3, 5], &[1, 0])),
        (45, Layout::from_parts(&[2, 3, 4], &[20, 6, 1]).with_offset(3)),
        (64 * 300, Layout::from_parts(&[64, 300], &[300, 1])),
        (3 * 5000, Layout::from_parts(&[3, 5000], &[5000, 1])),
        (5000 * 7, Layout::from_parts(&[5000, 7], &[7, 1])),
        (120, Layout::from_parts(&[2, 3, 4, 5], &[60, 1, 15, 3])),
        (0, Layout::from_parts(&[3, 0], &[0, 1])),
    ]
}

/// Every sorted set of axes of a rank-`rank` tensor, the empty one included.
fn axis_sets(rank: usize) -> Vec<Vec<usize>> {
    (0..1usize << rank)
        .map(|mask| (0..rank).filter(|a| mask & (1 << a) != 0).collect())
        .collect()
}

/// Equal, NaN where the other is NaN, within `tolerance` relative to `max(1, |cpu|)`.
fn assert_close<E: Dtype>(gpu: &[E], cpu: &[E], tolerance: f64, what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let (g, c) = (g.to_f64(), c.to_f64());
        let same = (g.is_nan() && c.is_nan()) || g == c || (g - c).abs() <= tolerance * c.abs().max(1.0);
        assert!(same, "{what}: element {i} is {g} on the GPU, {c} on the CPU");
    }
}

/// The tolerance for sums of `E`.
fn tolerance<E: Dtype>() -> f64 {
    if size_of::<E>() == 4 { 2e-4 } else { 1e-10 }
}

fn upload<D: Kernels<E>, E: Dtype>(d: &D, data: &[E]) -> <D as Storage<E>>::Vec {
    d.try_from_host(data.to_vec()).unwrap()
}

fn download<D: Kernels<E>, E: Dtype>(d: &D, buffer: &<D as Storage<E>>::Vec) -> Vec<E> {
    d.try_to_host(buffer).unwrap()
}

/// Each forward reduction of `data` through `layout` over `axes`, and each backward
/// pass into a gradient that starts non-zero, all read back.
fn reductions<D: Kernels<E>, E: Dtype>(d: &D, data: &[E], layout: Layout, axes: &[usize]) -> Vec<(String, Vec<E>)> {
    let x = upload(d, data);
    let input = View::new(&x, layout);
    let mut results = Vec::new();
    let mut record = |name: &str, values: Vec<E>| results.push((name.to_string(), values));

    let sum = SumKernel::forward(d, input, axes).unwrap();
    let count = Storage::<E>::try_to_host(d, &sum).unwrap().len();
    let grad_output = upload(d, &values::<E>(count, 7, false));
    record("sum", download(d, &sum));
    let start = values::<E>(data.len(), 11, false);
    let mut grad = upload(d, &start);
    SumKernel::backward(d, ViewMut::new(&mut grad, layout), axes, &grad_output).unwrap();
    record("sum backward", download(d, &grad));

    for kind in [Extremum::Max, Extremum::Min] {
        let out = ExtremumKernel::forward(d, kind, input, axes).unwrap();
        record(&format!("{kind:?}"), download(d, &out));
        let mut grad = upload(d, &start);
        ExtremumKernel::backward(d, input, axes, &out, &mut grad, &grad_output).unwrap();
        record(&format!("{kind:?} backward"), download(d, &grad));
        let indices = ArgExtremumKernel::forward(d, kind, input, axes).unwrap();
        let indices: Vec<usize> = d.try_to_host(&indices).unwrap();
        record(
            &format!("arg {kind:?}"),
            indices.iter().map(|&i| E::from_f64(i as f64)).collect(),
        );
    }

    for spread in [Spread::Variance, Spread::StdDev] {
        for correction in [0.0, 1.0] {
            let correction = E::from_f64(correction);
            let out = VarianceKernel::forward(d, spread, correction, input, axes).unwrap();
            record(&format!("{spread:?} {correction:?}"), download(d, &out));
            let std = (spread == Spread::StdDev).then_some(&out);
            let mut grad = upload(d, &start);
            VarianceKernel::backward(d, correction, input, axes, std, &mut grad, &grad_output).unwrap();
            record(&format!("{spread:?} {correction:?} backward"), download(d, &grad));
        }
    }

    let out = LogSumExpKernel::forward(d, input, axes).unwrap();
    record("logsumexp", download(d, &out));
    let mut grad = upload(d, &start);
    LogSumExpKernel::backward(d, input, axes, &out, &mut grad, &grad_output).unwrap();
    record("logsumexp backward", download(d, &grad));
    results
}

/// Runs `reductions` on both devices over every case and set of axes, with random data
/// and with data full of ties.
fn compare_reductions<E: Dtype + ferrograd_cuda::CudaElement>(gpu: &Cuda)
where
    Cuda: Kernels<E>,
{
    let cpu = Cpu::default();
    for (len, layout) in cases() {
        for ties in [false, true] {
            let data = values::<E>(len, len as u64 + 1, ties);
            for axes in axis_sets(layout.rank()) {
                let on_gpu = reductions(gpu, &data, layout, &axes);
                let on_cpu = reductions(&cpu, &data, layout, &axes);
                for ((name, g), (_, c)) in on_gpu.iter().zip(&on_cpu) {
                    let what = format!("{name} of {layout:?} over {axes:?} (ties: {ties})");
                    // Extrema, their indices and the gradients that follow them are exact.
                    let exact = name.starts_with("Max") || name.starts_with("Min") || name.starts_with("arg");
                    let tolerance = if exact && !name.ends_with("backward") {
                        0.0
                    } else {
                        tolerance::<E>()
                    };
                    assert_close(g, c, tolerance, &what);
                }
            }
        }
    }
}

#[test]
fn reductions_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    compare_reductions::<f32>(&gpu);
    compare_reductions::<f64>(&gpu);
}

#[test]
fn extrema_propagate_nan_and_pick_the_first_of_ties() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    // Rows: ties for the maximum, a NaN after a tie, two NaNs, all -inf, one long row
    // (a block) with its maximum repeated at its end.
    let mut data = vec![
        1.0f32,
        3.0,
        3.0,
        0.0,
        3.0,
        3.0,
        f32::NAN,
        2.0,
        f32::NAN,
        1.0,
        f32::NAN,
        0.0,
    ];
    data.extend([f32::NEG_INFINITY; 4]);
    let layout = Layout::from_parts(&[4, 4], &[4, 1]);
    let long: Vec<f32> = (0..10_000).map(|i| (i % 97) as f32).collect();
    for (data, layout) in [(data, layout), (long, Layout::from_parts(&[2, 5000], &[5000, 1]))] {
        for kind in [Extremum::Max, Extremum::Min] {
            for axes in [vec![1], vec![0], vec![0, 1]] {
                let (x, y) = (
                    gpu.try_from_host(data.clone()).unwrap(),
                    cpu.try_from_host(data.clone()).unwrap(),
                );
                let what = format!("{kind:?} over {axes:?}");
                let g = ExtremumKernel::forward(&gpu, kind, View::new(&x, layout), &axes).unwrap();
                let c = ExtremumKernel::forward(&cpu, kind, View::new(&y, layout), &axes).unwrap();
                assert_close(&gpu.try_to_host(&g).unwrap(), &cpu.try_to_host(&c).unwrap(), 0.0, &what);
                let g = ArgExtremumKernel::forward(&gpu, kind, View::new(&x, layout), &axes).unwrap();
                let c = ArgExtremumKernel::forward(&cpu, kind, View::new(&y, layout), &axes).unwrap();
                assert_eq!(gpu.try_to_host(&g).unwrap(), cpu.try_to_host(&c).unwrap(), "arg {what}");
            }
            for axis in [0, 1] {
                let (x, y) = (
                    gpu.try_from_host(data.clone()).unwrap(),
                    cpu.try_from_host(data.clone()).unwrap(),
                );
                let (gv, gi) = ExtremumWithIndicesKernel::forward(&gpu, kind, View::new(&x, layout), axis).unwrap();
                let (cv, ci) = ExtremumWithIndicesKernel::forward(&cpu, kind, View::new(&y, layout), axis).unwrap();
                let what = format!("{kind:?} with indices along {axis}");
                assert_close(
                    &gpu.try_to_host(&gv).unwrap(),
                    &cpu.try_to_host(&cv).unwrap(),
                    0.0,
                    &what,
                );
                assert_eq!(gpu.try_to_host(&gi).unwrap(), cpu.try_to_host(&ci).unwrap(), "{what}");
            }
        }
    }
}

#[test]
fn extremum_with_indices_scatters_its_gradient_like_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    // A vector broadcast to rows (its gradient accumulates) and a transposed matrix.
    let cases = [
        (values::<f64>(5, 3, true), Layout::from_parts(&[4, 5], &[0, 1])),
        (values::<f64>(12, 4, true), Layout::from_parts(&[4, 3], &[1, 4])),
    ];
    for (data, layout) in cases {
        for axis in [0, 1] {
            let (x, y) = (
                gpu.try_from_host(data.clone()).unwrap(),
                cpu.try_from_host(data.clone()).unwrap(),
            );
            let (_, gi) = ExtremumWithIndicesKernel::forward(&gpu, Extremum::Max, View::new(&x, layout), axis).unwrap();
            let (_, ci) = ExtremumWithIndicesKernel::forward(&cpu, Extremum::Max, View::new(&y, layout), axis).unwrap();
            let outputs = layout.num_elements() / layout.dims()[axis];
            let dy = values::<f64>(outputs, 9, true);
            let mut g = gpu.try_from_host(vec![0.5; data.len()]).unwrap();
            let mut c = cpu.try_from_host(vec![0.5; data.len()]).unwrap();
            let (gdy, cdy) = (gpu.try_from_host(dy.clone()).unwrap(), cpu.try_from_host(dy).unwrap());
            ExtremumWithIndicesKernel::backward(&gpu, ViewMut::new(&mut g, layout), axis, &gi, &gdy).unwrap();
            ExtremumWithIndicesKernel::backward(&cpu, ViewMut::new(&mut c, layout), axis, &ci, &cdy).unwrap();
            // Sums of a few whole numbers and halves: exact in any order.
            assert_eq!(
                gpu.try_to_host(&g).unwrap(),
                cpu.try_to_host(&c).unwrap(),
                "along {axis}"
            );
        }
    }
    // An index past the axis is the CPU's error, and nothing is written.
    let layout = Layout::from_parts(&[2, 3], &[3, 1]);
    let mut g = gpu.try_from_host(vec![0.0f64; 6]).unwrap();
    let bad = gpu.try_from_host(vec![0usize, 3]).unwrap();
    let dy = gpu.try_from_host(vec![1.0f64, 1.0]).unwrap();
    let e = ExtremumWithIndicesKernel::backward(&gpu, ViewMut::new(&mut g, layout), 1, &bad, &dy).unwrap_err();
    assert_eq!(
        e.to_string(),
        "max_with_indices / min_with_indices: index 3 is out of bounds for axis 1 of size 3"
    );
    assert_eq!(gpu.try_to_host(&g).unwrap(), vec![0.0; 6]);
}

/// Softmax or log-softmax forward (from a shared or a handed-over buffer) and backward
/// into a non-zero gradient, read back.
fn softmax<D: Kernels<E>, E: Dtype>(
    d: &D,
    kind: SoftmaxKind,
    data: &[E],
    layout: Layout,
    axes: &[usize],
    unique: bool,
) -> (Vec<E>, Vec<E>) {
    let x = upload(d, data);
    let input = if unique { Input::Unique(x) } else { Input::Shared(&x) };
    let y = SoftmaxKernel::forward(d, kind, InputView::new(input, layout), axes).unwrap();
    let numel = layout.num_elements();
    let dy = upload(d, &values::<E>(numel, 5, false));
    let mut grad = upload(d, &values::<E>(data.len(), 6, false));
    SoftmaxKernel::backward(d, kind, ViewMut::new(&mut grad, layout), axes, &y, &dy).unwrap();
    (download(d, &y), download(d, &grad))
}

fn compare_softmax<E: Dtype + ferrograd_cuda::CudaElement>(gpu: &Cuda)
where
    Cuda: Kernels<E>,
{
    let cpu = Cpu::default();
    for (len, layout) in cases() {
        let data = values::<E>(len, len as u64 + 3, false);
        for axes in axis_sets(layout.rank()) {
            for kind in [SoftmaxKind::Softmax, SoftmaxKind::LogSoftmax] {
                for unique in [false, true] {
                    let (gy, gdx) = softmax(gpu, kind, &data, layout, &axes, unique);
                    let (cy, cdx) = softmax(&cpu, kind, &data, layout, &axes, unique);
                    let what = format!("{kind:?} of {layout:?} over {axes:?} (unique: {unique})");
                    assert_close(&gy, &cy, tolerance::<E>(), &what);
                    assert_close(&gdx, &cdx, tolerance::<E>(), &format!("{what} backward"));
                }
            }
        }
    }
}

#[test]
fn softmax_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    compare_softmax::<f32>(&gpu);
    compare_softmax::<f64>(&gpu);
}

#[test]
fn a_contiguous_unique_input_is_normalised_in_place() {
    let Some(gpu) = gpu() else { return };
    let layout = Layout::from_parts(&[2, 3], &[3, 1]);
    let x = gpu.try_from_host(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap();
    let y = SoftmaxKernel::forward(
        &gpu,
        SoftmaxKind::Softmax,
        InputView::new(Input::Unique(x), layout),
        &[1],
    )
    .unwrap();
    let y = gpu.try_to_host(&y).unwrap();
    assert!(
        (y[3] - 1.0 / 3.0).abs() < 1e-6 && (y[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6,
        "{y:?}"
    );
}

/// Gathers along every axis of `layout` with random in-range indices through a
/// contiguous, a broadcast and a transposed index layout.
fn compare_gather<E: ferrograd_cuda::CudaElement>(gpu: &Cuda, data: Vec<E>)
where
    Cpu: GatherKernel<E>,
{
    let cpu = Cpu::default();
    let layout = Layout::from_parts(&[3, 4], &[1, 3]);
    for axis in [0, 1] {
        let size = layout.dims()[axis];
        let picks: Vec<usize> = (0..20).map(|i| (i * 7 + axis) % size).collect();
        let mut index_dims = layout.dims().to_vec();
        index_dims[axis] = 2;
        // One index for the whole of the other axis: stride 0 there.
        let mut broadcast = [0, 0];
        broadcast[axis] = 1;
        let index_layouts = [
            Layout::from_parts(&index_dims, &[index_dims[1], 1]),
            Layout::from_parts(&index_dims, &broadcast),
            Layout::from_parts(&index_dims, &[1, index_dims[0]]).with_offset(1),
        ];
        for index_layout in index_layouts {
            let gx = gpu.try_from_host(data.clone()).unwrap();
            let cx = cpu.try_from_host(data.clone()).unwrap();
            let gi = gpu.try_from_host(picks.clone()).unwrap();
            let ci = cpu.try_from_host(picks.clone()).unwrap();
            let g = gpu
                .gather("gather", View::new(&gx, layout), axis, View::new(&gi, index_layout))
                .unwrap();
            let c = cpu
                .gather("gather", View::new(&cx, layout), axis, View::new(&ci, index_layout))
                .unwrap();
            assert_eq!(
                gpu.try_to_host(&g).unwrap(),
                cpu.try_to_host(&c).unwrap(),
                "along {axis} with {index_layout:?}"
            );
        }
    }
}

#[test]
fn gathers_of_every_element_type_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    compare_gather(&gpu, values::<f32>(12, 1, false));
    compare_gather(&gpu, values::<f64>(12, 2, false));
    compare_gather(&gpu, (0..12).map(|i| usize::MAX - i).collect());
    compare_gather(&gpu, (0..12).map(|i| i % 3 == 0).collect());
}

/// `start` through `dst_layout`, after a scatter-add of `src` at `picks` along `axis`.
fn scatter_add<D: Kernels<E>, E: Dtype>(
    d: &D,
    (start, dst_layout): (&[E], Layout),
    axis: usize,
    (picks, index_layout): (&[usize], Layout),
    src: &[E],
) -> Vec<E> {
    let mut dst = upload(d, start);
    let index = d.try_from_host(picks.to_vec()).unwrap();
    let src = upload(d, src);
    d.scatter_add(
        "scatter_add",
        ViewMut::new(&mut dst, dst_layout),
        axis,
        View::new(&index, index_layout),
        View::new(&src, index_layout),
    )
    .unwrap();
    download(d, &dst)
}

/// `into` through `into_layout`, after a gather-add from `data` at `picks` along `axis`.
fn gather_add<D: Kernels<E>, E: Dtype>(
    d: &D,
    (data, data_layout): (&[E], Layout),
    axis: usize,
    (picks, index_layout): (&[usize], Layout),
    (into, into_layout): (&[E], Layout),
) -> Vec<E> {
    let x = upload(d, data);
    let index = d.try_from_host(picks.to_vec()).unwrap();
    let mut dst = upload(d, into);
    d.gather_add(
        "scatter_add",
        View::new(&x, data_layout),
        axis,
        View::new(&index, index_layout),
        ViewMut::new(&mut dst, into_layout),
    )
    .unwrap();
    download(d, &dst)
}

/// Scatter-add and gather-add of small whole numbers (exact in any order of addition)
/// with repeated indices, into dense, offset and broadcast destinations.
fn compare_scatter<E: Dtype + ferrograd_cuda::CudaElement>(gpu: &Cuda)
where
    Cuda: Kernels<E>,
{
    let cpu = Cpu::default();
    // (buffer length, layout) of a (3, 4) destination.
    let destinations = [
        (12, Layout::from_parts(&[3, 4], &[4, 1])),
        (20, Layout::from_parts(&[3, 4], &[6, 1]).with_offset(2)),
        (4, Layout::from_parts(&[3, 4], &[0, 1])),
    ];
    for (len, dst_layout) in destinations {
        for axis in [0, 1] {
            let size = dst_layout.dims()[axis];
            let mut index_dims = dst_layout.dims().to_vec();
            index_dims[axis] = 5;
            let numel: usize = index_dims.iter().product();
            let picks: Vec<usize> = (0..numel).map(|i| (i * 5 + 1) % size).collect();
            let index_layout = Layout::from_parts(&index_dims, &[index_dims[1], 1]);
            let index = (picks.as_slice(), index_layout);

            let src = values::<E>(numel, 8, true);
            let start = values::<E>(len, 9, true);
            let g = scatter_add(gpu, (&start, dst_layout), axis, index, &src);
            let c = scatter_add(&cpu, (&start, dst_layout), axis, index, &src);
            assert_eq!(g, c, "scatter_add into {dst_layout:?} along {axis}");

            // The destination has the index's dims: dense, or one row broadcast.
            let into = values::<E>(numel, 11, true);
            for into_layout in [index_layout, Layout::from_parts(&index_dims, &[0, 1])] {
                let g = gather_add(gpu, (&start, dst_layout), axis, index, (&into, into_layout));
                let c = gather_add(&cpu, (&start, dst_layout), axis, index, (&into, into_layout));
                assert_eq!(g, c, "gather_add from {dst_layout:?} along {axis} into {into_layout:?}");
            }
        }
    }
}

#[test]
fn scatters_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    compare_scatter::<f32>(&gpu);
    compare_scatter::<f64>(&gpu);
}

#[test]
fn one_hot_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let picks = vec![2usize, 0, 4, 4, 1, 3];
    for layout in [
        Layout::from_parts(&[2, 3], &[3, 1]),
        Layout::from_parts(&[3, 2], &[1, 3]),
        Layout::from_parts(&[4], &[0]),
    ] {
        let g: ferrograd_cuda::CudaBuffer<f32> = gpu
            .one_hot(View::new(&gpu.try_from_host(picks.clone()).unwrap(), layout), 5)
            .unwrap();
        let c = OneHotKernel::<f32>::one_hot(&cpu, View::new(&cpu.try_from_host(picks.clone()).unwrap(), layout), 5)
            .unwrap();
        assert_eq!(gpu.try_to_host(&g).unwrap(), cpu.try_to_host(&c).unwrap(), "{layout:?}");
    }
}

#[test]
fn out_of_range_indices_are_the_cpus_errors_and_write_nothing() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let layout = Layout::from_parts(&[3], &[1]);
    // Two bad indices: the first (row-major) is named.
    let picks = vec![0usize, 7, 1, 3];
    let index_layout = Layout::from_parts(&[4], &[1]);
    let expected = cpu
        .gather(
            "gather",
            View::new(&cpu.try_from_host(vec![1.0f32, 2.0, 3.0]).unwrap(), layout),
            0,
            View::new(&cpu.try_from_host(picks.clone()).unwrap(), index_layout),
        )
        .unwrap_err()
        .to_string();
    assert_eq!(expected, "gather: index 7 is out of bounds for axis 0 of size 3");
    let x = gpu.try_from_host(vec![1.0f32, 2.0, 3.0]).unwrap();
    let index = gpu.try_from_host(picks.clone()).unwrap();
    let e = gpu
        .gather("gather", View::new(&x, layout), 0, View::new(&index, index_layout))
        .unwrap_err();
    assert_eq!(e.to_string(), expected);

    let mut dst = gpu.try_from_host(vec![1.0f32, 2.0, 3.0]).unwrap();
    let src = gpu.try_from_host(vec![10.0f32; 4]).unwrap();
    let e = gpu
        .scatter_add(
            "scatter_add",
            ViewMut::new(&mut dst, layout),
            0,
            View::new(&index, index_layout),
            View::new(&src, index_layout),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scatter_add: index 7 is out of bounds for axis 0 of size 3"
    );
    assert_eq!(gpu.try_to_host(&dst).unwrap(), vec![1.0, 2.0, 3.0]);

    let mut into = gpu.try_from_host(vec![0.0f32; 4]).unwrap();
    let e = gpu
        .gather_add(
            "scatter_add",
            View::new(&src, layout),
            0,
            View::new(&index, index_layout),
            ViewMut::new(&mut into, index_layout),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scatter_add: index 7 is out of bounds for axis 0 of size 3"
    );
    assert_eq!(gpu.try_to_host(&into).unwrap(), vec![0.0; 4]);

    let e = OneHotKernel::<f64>::one_hot(&gpu, View::new(&index, index_layout), 5).unwrap_err();
    assert_eq!(e.to_string(), "one_hot: index 7 is out of bounds for 5 classes");
    // An empty axis: every index is out of range, and there is nothing to read.
    let empty = gpu.try_from_host(Vec::<f32>::new()).unwrap();
    let e = gpu
        .gather(
            "gather",
            View::new(&empty, Layout::from_parts(&[0], &[1])),
            0,
            View::new(&index, index_layout),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "gather: index 0 is out of bounds for axis 0 of size 0");
}

#[test]
fn bad_views_are_errors_before_any_launch() {
    let Some(gpu) = gpu() else { return };
    let x = gpu.try_from_host(vec![1.0f32; 6]).unwrap();
    let past = Layout::from_parts(&[2, 4], &[3, 1]);
    let e = SumKernel::forward(&gpu, View::new(&x, past), &[1]).unwrap_err();
    assert!(e.to_string().starts_with("sum: input reaches element 6"), "{e}");
    let fits = Layout::from_parts(&[2, 3], &[3, 1]);
    let e = SumKernel::forward(&gpu, View::new(&x, fits), &[1, 0]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { op: "sum", .. }), "{e}");
    let short = gpu.try_from_host(vec![1.0f32]).unwrap();
    let mut grad = gpu.try_from_host(vec![0.0f32; 6]).unwrap();
    let e = SumKernel::backward(&gpu, ViewMut::new(&mut grad, fits), &[1], &short).unwrap_err();
    assert!(e.to_string().contains("grad_output has 1 elements"), "{e}");
    let e = ExtremumWithIndicesKernel::forward(&gpu, Extremum::Max, View::new(&x, fits), 2).unwrap_err();
    assert_eq!(e.to_string(), "max_with_indices: axis 2 of a rank-2 tensor");
    let e = SoftmaxKernel::forward(
        &gpu,
        SoftmaxKind::LogSoftmax,
        InputView::new(Input::Shared(&x), past),
        &[1],
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("log_softmax: input reaches"), "{e}");
    // A buffer of another device handle on the same GPU is fine; the checks pass.
    let other = Cuda::new(0).unwrap();
    let y = SumKernel::forward(&other, View::new(&x, fits), &[1]).unwrap();
    assert_eq!(gpu.try_to_host(&y).unwrap(), vec![3.0, 3.0]);
}
