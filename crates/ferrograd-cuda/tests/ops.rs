//! The GPU's element-wise kernels compute what the CPU's do: every declared unary and
//! binary op (forward, in place, and each way a gradient is written), comparisons,
//! `choose`, conversions and strided copies, on small inputs read contiguously, through
//! slices, transposed and broadcast, compared with `ferrograd_cpu::Cpu`; and bad
//! arguments are errors, not launches.
//!
//! Every test that needs a GPU prints why it is skipped and passes where `Cuda::new(0)`
//! is an error, unless `FERROGRAD_REQUIRE_GPU` is set (as in `tests/device.rs`). The
//! comparisons are written for any two devices, and the first test runs them with the
//! CPU on both sides, so the harness itself is checked everywhere.
//!
//! Tolerance: CUDA's math functions (`expf`, `erff`, …) differ from the CPU's by a few
//! ulps, so values may differ by 1e-5 (f32) or 1e-12 (f64) relative to
//! `max(1, |value|)`; NaN must meet NaN, and infinities must be equal. A gradient whose
//! layout repeats elements is summed by `atomicAdd` in another order than the CPU's, so
//! it is compared relative to its largest element instead (see `gradient_scale`).

use ferrograd_cpu::Cpu;
use ferrograd_cuda::Cuda;
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::convert::{CastTo, ConvertKernel};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::elementwise::*;
use ferrograd_device::{
    Dtype, Error, GradientSlot, Input, InputView, Layout, OptionalView, Storage, Unit, View, ViewMut,
};

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

/// A view's layout and the length of the buffer it reads.
#[derive(Clone, Copy, Debug)]
struct Placement {
    name: &'static str,
    len: usize,
    layout: Layout,
}

impl Placement {
    fn new(name: &'static str, len: usize, dims: &[usize], strides: &[usize], offset: usize) -> Self {
        let layout = Layout::from_parts(dims, strides).with_offset(offset);
        assert!(layout.min_buffer_len() <= len, "{name} reaches past its buffer");
        Self { name, len, layout }
    }
}

/// Views of dims (2, 3, 4): contiguous, a slice of a larger buffer, transposed (column-
/// major), and broadcast three ways (each repeats elements).
fn placements() -> [Placement; 6] {
    let dims = [2, 3, 4];
    [
        Placement::new("contiguous", 24, &dims, &[12, 4, 1], 0),
        Placement::new("sliced", 40, &dims, &[16, 5, 1], 3),
        Placement::new("transposed", 24, &dims, &[1, 2, 6], 0),
        Placement::new("row broadcast", 4, &dims, &[0, 0, 1], 0),
        Placement::new("column broadcast", 5, &dims, &[0, 1, 0], 2),
        Placement::new("scalar broadcast", 1, &dims, &[0, 0, 0], 0),
    ]
}

/// Placements of other ranks: a rank-0 tensor, an empty one, and a long one that needs
/// several blocks.
fn other_placements() -> [Placement; 3] {
    [
        Placement::new("rank 0", 1, &[], &[], 0),
        Placement::new("empty", 0, &[0, 3], &[3, 1], 0),
        Placement::new("long transposed", 70_000, &[350, 200], &[1, 350], 0),
    ]
}

/// `len` values in [-3, 3] on a grid of 1/8 (so zeros, ties and bounds occur), from a
/// seeded generator; a NaN at position 5 when `nan` and there is room.
fn values<E: Dtype>(len: usize, seed: u64, nan: bool) -> Vec<E> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut values: Vec<E> = (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            E::from_f64(((state >> 33) % 49) as f64 / 8.0 - 3.0)
        })
        .collect();
    if nan && len > 5 {
        values[5] = E::from_f64(f64::NAN);
    }
    values
}

fn bools(len: usize, seed: u64) -> Vec<bool> {
    values::<f64>(len, seed, false).into_iter().map(|v| v > 0.0).collect()
}

/// Equal within the tolerance of the module docs, element by element.
fn assert_close<E: Dtype>(what: &str, actual: &[E], expected: &[E]) {
    assert_close_to_scale(what, actual, expected, 1.0);
}

/// As [`assert_close`], the tolerance relative to `max(scale, |value|)`.
fn assert_close_to_scale<E: Dtype>(what: &str, actual: &[E], expected: &[E], scale: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let tolerance = if size_of::<E>() == 4 { 1e-5 } else { 1e-12 };
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let (a, e) = (a.to_f64(), e.to_f64());
        let close =
            (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= tolerance * a.abs().max(e.abs()).max(scale);
        assert!(close, "{what}: element {i} is {a}, expected {e}");
    }
}

/// The scale to compare a gradient with when its layout repeats elements: the largest
/// finite magnitude among its elements (at least 1). `atomicAdd` adds the repeated
/// elements' terms in another order than the CPU, and where large terms cancel, the
/// difference is of the order of the terms, not of their small sum (a norm-wise bound).
fn gradient_scale<E: Dtype>(expected: &[E], repeats: bool) -> f64 {
    if !repeats {
        return 1.0;
    }
    expected
        .iter()
        .map(|e| e.to_f64().abs())
        .filter(|e| e.is_finite())
        .fold(1.0, f64::max)
}

// ---- Unary ops ----

/// Everything a unary kernel computes, on the host: the forward from a shared and from
/// a handed-over input, and the input's gradient as a first contribution (from a shared
/// and a handed-over `grad_output`) and added into an existing gradient.
fn run_unary<D, E, Op>(device: &D, op: &Op, placement: Placement, seed: u64) -> Result<Vec<Vec<E>>, Error>
where
    D: UnaryKernel<Op, E>,
    E: Dtype,
    Op: UnaryOp,
{
    let layout = placement.layout;
    let numel = layout.num_elements();
    let x_host = values::<E>(placement.len, seed, placement.name == "contiguous");
    let grad_output_host = values::<E>(numel, seed + 1, false);
    let existing_host = values::<E>(placement.len, seed + 2, false);
    let x = device.try_from_host(x_host.clone())?;
    let y = device.forward(op, InputView::new(Input::Shared(&x), layout))?;
    let mut results = vec![device.try_to_host(&y)?];
    let unique = device.forward(op, InputView::new(Input::Unique(device.try_from_host(x_host)?), layout))?;
    results.push(device.try_to_host(&unique)?);

    // Only what the op saves is passed, as autodiff does.
    let (input, output) = match Op::SAVES {
        Saved::Input => (Some(&x), None),
        Saved::Output => (None, Some(&y)),
        Saved::Nothing => (None, None),
    };
    let grad_output = device.try_from_host(grad_output_host.clone())?;
    for handed_over in [false, true] {
        let mut grad = None;
        let grad_output = if handed_over {
            Input::Unique(device.try_from_host(grad_output_host.clone())?)
        } else {
            Input::Shared(&grad_output)
        };
        device.backward(
            op,
            OptionalView::new(input, layout),
            output,
            GradientSlot::new(&mut grad, placement.len),
            grad_output,
        )?;
        results.push(device.try_to_host(grad.as_ref().expect("a first contribution stores a gradient"))?);
    }
    let mut grad = Some(device.try_from_host(existing_host)?);
    device.backward(
        op,
        OptionalView::new(input, layout),
        output,
        GradientSlot::new(&mut grad, placement.len),
        Input::Shared(&grad_output),
    )?;
    results.push(device.try_to_host(grad.as_ref().unwrap())?);
    Ok(results)
}

const UNARY_RESULTS: [&str; 5] = [
    "forward",
    "forward in place",
    "first gradient",
    "first gradient in place",
    "gradient added",
];

/// Runs [`unary_named`] for every declared unary op.
macro_rules! every_unary_op {
    ($device:expr, $E:ty) => {{
        let names = [
            unary_named::<_, $E, _>($device, Negate {}),
            unary_named::<_, $E, _>($device, Abs {}),
            unary_named::<_, $E, _>($device, Exp {}),
            unary_named::<_, $E, _>($device, Ln {}),
            unary_named::<_, $E, _>($device, Sqrt {}),
            unary_named::<_, $E, _>($device, Square {}),
            unary_named::<_, $E, _>($device, Powf::<$E> { exponent: 2.5 }),
            unary_named::<_, $E, _>($device, Powi { exponent: -3 }),
            unary_named::<_, $E, _>($device, Recip {}),
            unary_named::<_, $E, _>($device, Sin {}),
            unary_named::<_, $E, _>($device, Cos {}),
            unary_named::<_, $E, _>($device, Tanh {}),
            unary_named::<_, $E, _>($device, Sigmoid {}),
            unary_named::<_, $E, _>($device, Relu {}),
            unary_named::<_, $E, _>($device, LeakyRelu::<$E> { negative_slope: 0.125 }),
            unary_named::<_, $E, _>($device, Gelu {}),
            unary_named::<_, $E, _>($device, GeluTanh {}),
            unary_named::<_, $E, _>($device, Silu {}),
            unary_named::<_, $E, _>(
                $device,
                Softplus::<$E> {
                    beta: 2.0,
                    threshold: 3.0,
                },
            ),
            unary_named::<_, $E, _>($device, Clamp::<$E> { min: -1.0, max: 0.5 }),
            unary_named::<_, $E, _>($device, NansTo::<$E> { value: 7.0 }),
            unary_named::<_, $E, _>($device, ScalarAdd::<$E> { scalar: 1.5 }),
            unary_named::<_, $E, _>($device, ScalarSub::<$E> { scalar: -0.25 }),
            unary_named::<_, $E, _>($device, ScalarMul::<$E> { scalar: -3.0 }),
            unary_named::<_, $E, _>($device, ScalarDiv::<$E> { scalar: 0.375 }),
        ];
        // A newly declared op must be added above.
        let declared: Vec<&str> = unary_op_specs().iter().map(|spec| spec.name).collect();
        assert_eq!(names.to_vec(), declared);
    }};
}

/// `device`'s unary kernel computes what the CPU's does, in every placement; returns
/// the op's name for [`every_unary_op`]'s list.
fn unary_named<D, E, Op>(device: &D, op: Op) -> &'static str
where
    D: UnaryKernel<Op, E>,
    Cpu: UnaryKernel<Op, E>,
    E: Dtype,
    Op: UnaryOp,
{
    let cpu = Cpu::default();
    for (seed, placement) in placements().into_iter().chain(other_placements()).enumerate() {
        let actual = run_unary(device, &op, placement, seed as u64).unwrap();
        let expected = run_unary(&cpu, &op, placement, seed as u64).unwrap();
        let repeats = !placement.layout.has_unique_offsets();
        for (i, ((actual, expected), result)) in actual.iter().zip(&expected).zip(UNARY_RESULTS).enumerate() {
            let what = format!("{} on {}, {}: {result}", Op::NAME, E::NAME, placement.name);
            // Results 2 and after are gradients.
            let scale = gradient_scale(expected, i >= 2 && repeats);
            assert_close_to_scale(&what, actual, expected, scale);
        }
    }
    Op::NAME
}

// ---- Binary ops ----

/// Pairs of operand placements of one dims: both dense, a slice with a broadcast row (a
/// bias), transposed with a broadcast column, and a scalar with a dense operand.
fn operand_pairs() -> Vec<(Placement, Placement)> {
    let [contiguous, sliced, transposed, row, column, scalar] = placements();
    let [rank0, empty, long] = other_placements();
    let long_row = Placement::new("long row broadcast", 200, &[350, 200], &[0, 1], 0);
    vec![
        (contiguous, contiguous),
        (sliced, row),
        (transposed, column),
        (scalar, contiguous),
        (row, row),
        (rank0, rank0),
        (empty, empty),
        (long, long_row),
    ]
}

/// Everything a binary kernel computes: the forward from a shared and a handed-over
/// lhs, and for each operand its gradient as a first contribution (shared and handed-
/// over `grad_output`) and added into an existing one.
fn run_binary<D, E, Op>(
    device: &D,
    op: &Op,
    (lhs, rhs): (Placement, Placement),
    seed: u64,
) -> Result<Vec<Vec<E>>, Error>
where
    D: BinaryKernel<Op, E>,
    E: Dtype,
    Op: BinaryOp,
{
    let numel = lhs.layout.num_elements();
    let x_host = values::<E>(lhs.len, seed, lhs.name == "contiguous");
    let y_host = values::<E>(rhs.len, seed + 1, false);
    let grad_output_host = values::<E>(numel, seed + 2, false);
    let x = device.try_from_host(x_host.clone())?;
    let y = device.try_from_host(y_host)?;
    let forward = device.forward(
        op,
        InputView::new(Input::Shared(&x), lhs.layout),
        View::new(&y, rhs.layout),
    )?;
    let mut results = vec![device.try_to_host(&forward)?];
    let unique = device.forward(
        op,
        InputView::new(Input::Unique(device.try_from_host(x_host)?), lhs.layout),
        View::new(&y, rhs.layout),
    )?;
    results.push(device.try_to_host(&unique)?);

    let reads = Op::DERIVATIVES_READ_OPERANDS;
    let (x_kept, y_kept) = if reads { (Some(&x), Some(&y)) } else { (None, None) };
    let grad_output = device.try_from_host(grad_output_host.clone())?;
    for (operand, placement) in [(Operand::Lhs, lhs), (Operand::Rhs, rhs)] {
        for handed_over in [false, true] {
            let mut grad = None;
            let grad_output = if handed_over {
                Input::Unique(device.try_from_host(grad_output_host.clone())?)
            } else {
                Input::Shared(&grad_output)
            };
            device.backward(
                op,
                operand,
                OptionalView::new(x_kept, lhs.layout),
                OptionalView::new(y_kept, rhs.layout),
                GradientSlot::new(&mut grad, placement.len),
                grad_output,
            )?;
            results.push(device.try_to_host(grad.as_ref().expect("a first contribution stores a gradient"))?);
        }
        let mut grad = Some(device.try_from_host(values::<E>(placement.len, seed + 3, false))?);
        device.backward(
            op,
            operand,
            OptionalView::new(x_kept, lhs.layout),
            OptionalView::new(y_kept, rhs.layout),
            GradientSlot::new(&mut grad, placement.len),
            Input::Shared(&grad_output),
        )?;
        results.push(device.try_to_host(grad.as_ref().unwrap())?);
    }
    Ok(results)
}

const BINARY_RESULTS: [&str; 8] = [
    "forward",
    "forward in place",
    "first lhs gradient",
    "first lhs gradient in place",
    "lhs gradient added",
    "first rhs gradient",
    "first rhs gradient in place",
    "rhs gradient added",
];

fn binary_named<D, E, Op>(device: &D, op: Op) -> &'static str
where
    D: BinaryKernel<Op, E>,
    Cpu: BinaryKernel<Op, E>,
    E: Dtype,
    Op: BinaryOp,
{
    let cpu = Cpu::default();
    for (seed, pair) in operand_pairs().into_iter().enumerate() {
        let actual = run_binary(device, &op, pair, seed as u64).unwrap();
        let expected = run_binary(&cpu, &op, pair, seed as u64).unwrap();
        let repeats = [pair.0, pair.1].map(|placement| !placement.layout.has_unique_offsets());
        for (i, ((actual, expected), result)) in actual.iter().zip(&expected).zip(BINARY_RESULTS).enumerate() {
            let what = format!(
                "{} on {}, {} and {}: {result}",
                Op::NAME,
                E::NAME,
                pair.0.name,
                pair.1.name
            );
            // Results 2 to 4 are the lhs's gradients, 5 to 7 the rhs's.
            let scale = gradient_scale(expected, (2..5).contains(&i) && repeats[0] || i >= 5 && repeats[1]);
            assert_close_to_scale(&what, actual, expected, scale);
        }
    }
    Op::NAME
}

macro_rules! every_binary_op {
    ($device:expr, $E:ty) => {{
        let names = [
            binary_named::<_, $E, _>($device, Add),
            binary_named::<_, $E, _>($device, Sub),
            binary_named::<_, $E, _>($device, Mul),
            binary_named::<_, $E, _>($device, Div),
            binary_named::<_, $E, _>($device, Maximum),
            binary_named::<_, $E, _>($device, Minimum),
        ];
        let declared: Vec<&str> = binary_op_specs().iter().map(|spec| spec.name).collect();
        assert_eq!(names.to_vec(), declared);
    }};
}

// ---- Comparisons, choose, conversions, copies ----

const COMPARISONS: [Comparison; 6] = [
    Comparison::Eq,
    Comparison::Ne,
    Comparison::Lt,
    Comparison::Le,
    Comparison::Gt,
    Comparison::Ge,
];

/// Every comparison, of two views and of a view and a scalar, for data made by `make`.
fn run_compare<D, E>(device: &D, make: fn(usize, u64) -> Vec<E>, scalar: E) -> Result<Vec<Vec<bool>>, Error>
where
    D: CompareKernel<E>,
    E: Unit + PartialOrd,
{
    let mut results = Vec::new();
    for (seed, (lhs, rhs)) in operand_pairs().into_iter().enumerate() {
        let x = <D as Storage<E>>::try_from_host(device, make(lhs.len, seed as u64))?;
        let y = <D as Storage<E>>::try_from_host(device, make(rhs.len, seed as u64 + 1))?;
        for op in COMPARISONS {
            let out = device.compare(op, View::new(&x, lhs.layout), View::new(&y, rhs.layout))?;
            results.push(<D as Storage<bool>>::try_to_host(device, &out)?);
            let out = device.compare_scalar(op, View::new(&x, lhs.layout), scalar)?;
            results.push(<D as Storage<bool>>::try_to_host(device, &out)?);
        }
    }
    Ok(results)
}

fn compare_matches<D>(device: &D)
where
    D: CompareKernel<f32> + CompareKernel<f64> + CompareKernel<usize> + CompareKernel<bool>,
{
    let cpu = Cpu::default();
    let floats = |len, seed| values::<f32>(len, seed, true);
    assert_eq!(
        run_compare(device, floats, 0.5).unwrap(),
        run_compare(&cpu, floats, 0.5).unwrap(),
        "f32"
    );
    let nan = |len, seed| values::<f64>(len, seed, true);
    assert_eq!(
        run_compare(device, nan, f64::NAN).unwrap(),
        run_compare(&cpu, nan, f64::NAN).unwrap(),
        "f64 against NaN"
    );
    let indices = |len, seed| -> Vec<usize> {
        let huge = usize::MAX - 3;
        values::<f64>(len, seed, false)
            .into_iter()
            .map(|v| if v < -2.5 { huge } else { (v * 8.0 + 24.0) as usize })
            .collect()
    };
    assert_eq!(
        run_compare(device, indices, 20).unwrap(),
        run_compare(&cpu, indices, 20).unwrap(),
        "usize"
    );
    assert_eq!(
        run_compare(device, bools, true).unwrap(),
        run_compare(&cpu, bools, true).unwrap(),
        "bool"
    );
}

/// `choose` forward over every triple of placements tried, and both gradients added
/// into existing ones through each operand's layout.
fn run_choose<D, E>(device: &D) -> Result<Vec<Vec<E>>, Error>
where
    D: ChooseKernel<E>,
    E: Dtype,
{
    let [contiguous, sliced, transposed, row, column, scalar] = placements();
    let triples = [
        (contiguous, sliced, transposed),
        (row, column, contiguous),
        (transposed, scalar, row),
        (column, contiguous, scalar),
    ];
    let mut results = Vec::new();
    for (seed, (condition, on_true, on_false)) in triples.into_iter().enumerate() {
        let seed = seed as u64;
        let c = <D as Storage<bool>>::try_from_host(device, bools(condition.len, seed))?;
        let t = <D as Storage<E>>::try_from_host(device, values(on_true.len, seed + 1, true))?;
        let f = <D as Storage<E>>::try_from_host(device, values(on_false.len, seed + 2, false))?;
        let out = device.forward(
            View::new(&c, condition.layout),
            View::new(&t, on_true.layout),
            View::new(&f, on_false.layout),
        )?;
        results.push(<D as Storage<E>>::try_to_host(device, &out)?);
        let grad_output = <D as Storage<E>>::try_from_host(device, values(24, seed + 3, false))?;
        for (operand, placement) in [(Operand::Lhs, on_true), (Operand::Rhs, on_false)] {
            let mut grad = <D as Storage<E>>::try_from_host(device, values(placement.len, seed + 4, false))?;
            device.backward(
                operand,
                View::new(&c, condition.layout),
                ViewMut::new(&mut grad, placement.layout),
                &grad_output,
            )?;
            results.push(<D as Storage<E>>::try_to_host(device, &grad)?);
        }
    }
    Ok(results)
}

fn choose_matches<D: ChooseKernel<f32> + ChooseKernel<f64>>(device: &D) {
    let cpu = Cpu::default();
    for (i, (actual, expected)) in run_choose::<_, f32>(device)
        .unwrap()
        .iter()
        .zip(&run_choose::<_, f32>(&cpu).unwrap())
        .enumerate()
    {
        assert_close(&format!("choose f32, result {i}"), actual, expected);
    }
    for (i, (actual, expected)) in run_choose::<_, f64>(device)
        .unwrap()
        .iter()
        .zip(&run_choose::<_, f64>(&cpu).unwrap())
        .enumerate()
    {
        assert_close(&format!("choose f64, result {i}"), actual, expected);
    }
}

/// `From` → `To` through every placement, the input made by `make`.
fn run_convert<D, From, To>(device: &D, make: fn(usize, u64) -> Vec<From>) -> Result<Vec<Vec<To>>, Error>
where
    D: ConvertKernel<From, To>,
    From: CastTo<To>,
    To: Unit,
{
    let mut results = Vec::new();
    for (seed, placement) in placements().into_iter().chain(other_placements()).enumerate() {
        let input = <D as Storage<From>>::try_from_host(device, make(placement.len, seed as u64))?;
        let out = device.convert(View::new(&input, placement.layout))?;
        results.push(<D as Storage<To>>::try_to_host(device, &out)?);
    }
    Ok(results)
}

/// Equal, NaN meeting NaN (a conversion is exact, or rounds as the CPU does).
fn same<T: Unit>(actual: &[Vec<T>], expected: &[Vec<T>]) -> bool {
    #[allow(clippy::eq_op)] // x != x is the NaN test for any Unit.
    let equal = |a: &T, e: &T| a == e || (a != a && e != e);
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| a.len() == e.len() && a.iter().zip(e).all(|(a, e)| equal(a, e)))
}

fn convert_matches<D>(device: &D)
where
    D: ConvertKernel<f32, f64>
        + ConvertKernel<f64, f32>
        + ConvertKernel<f32, f32>
        + ConvertKernel<f64, f64>
        + ConvertKernel<bool, f32>
        + ConvertKernel<bool, f64>
        + ConvertKernel<bool, bool>,
{
    let cpu = Cpu::default();
    let f32s = |len, seed| values::<f32>(len, seed, true);
    // Thirds round differently in f32 than in f64.
    let f64s = |len, seed| -> Vec<f64> { values::<f64>(len, seed, true).iter().map(|v| v / 3.0).collect() };
    macro_rules! check {
        ($from:ty => $to:ty, $make:expr) => {{
            let actual = run_convert::<_, $from, $to>(device, $make).unwrap();
            let expected = run_convert::<_, $from, $to>(&cpu, $make).unwrap();
            assert!(
                same(&actual, &expected),
                "{} to {}: {actual:?} != {expected:?}",
                <$from as Unit>::NAME,
                <$to as Unit>::NAME
            );
        }};
    }
    check!(f32 => f64, f32s);
    check!(f64 => f32, f64s);
    check!(f32 => f32, f32s);
    check!(f64 => f64, f64s);
    check!(bool => f32, bools);
    check!(bool => f64, bools);
    check!(bool => bool, bools);
}

/// `copy_strided` into every placement that repeats no element, and `add_strided`
/// into every placement, from every placement.
fn run_copies<D: CopyKernel<E>, E: Dtype>(device: &D) -> Result<Vec<Vec<E>>, Error> {
    let mut results = Vec::new();
    let all = placements();
    for (i, src) in all.iter().enumerate() {
        for (j, dst) in all.iter().enumerate() {
            let seed = (i * all.len() + j) as u64;
            let source = device.try_from_host(values(src.len, seed, false))?;
            if dst.layout.has_unique_offsets() {
                let mut target = device.try_from_host(values(dst.len, seed + 1, false))?;
                device.copy_strided(View::new(&source, src.layout), ViewMut::new(&mut target, dst.layout))?;
                results.push(device.try_to_host(&target)?);
            }
            let mut target = device.try_from_host(values(dst.len, seed + 2, false))?;
            device.add_strided(View::new(&source, src.layout), ViewMut::new(&mut target, dst.layout))?;
            results.push(device.try_to_host(&target)?);
        }
    }
    let [_, _, long] = other_placements();
    let long_column = Placement::new("long column", 350, &[350, 200], &[1, 0], 0);
    let source = device.try_from_host(values(long.len, 7, false))?;
    let mut target = device.try_from_host(values(long_column.len, 8, false))?;
    device.add_strided(
        View::new(&source, long.layout),
        ViewMut::new(&mut target, long_column.layout),
    )?;
    results.push(device.try_to_host(&target)?);
    Ok(results)
}

fn copies_match<D: CopyKernel<f32> + CopyKernel<f64>>(device: &D) {
    let cpu = Cpu::default();
    for (i, (actual, expected)) in run_copies::<_, f32>(device)
        .unwrap()
        .iter()
        .zip(&run_copies::<_, f32>(&cpu).unwrap())
        .enumerate()
    {
        assert_close(&format!("copies f32, result {i}"), actual, expected);
    }
    for (i, (actual, expected)) in run_copies::<_, f64>(device)
        .unwrap()
        .iter()
        .zip(&run_copies::<_, f64>(&cpu).unwrap())
        .enumerate()
    {
        assert_close(&format!("copies f64, result {i}"), actual, expected);
    }
}

// ---- Refusals ----

/// Bad arguments are errors naming the kernel, before anything runs.
fn refusals<D>(device: &D)
where
    D: UnaryKernel<Exp, f32>
        + UnaryKernel<Ln, f32>
        + BinaryKernel<Mul, f32>
        + CopyKernel<f32>
        + CompareKernel<f32>
        + ChooseKernel<f32>
        + ConvertKernel<f32, f64>,
{
    let buffer = <D as Storage<f32>>::try_from_host(device, vec![1.0; 6]).unwrap();
    let fits = Layout::from_parts(&[2, 3], &[3, 1]);
    let past = Layout::from_parts(&[2, 4], &[3, 1]);
    let shifted = fits.with_offset(1);
    let other_dims = Layout::from_parts(&[3, 2], &[2, 1]);
    let invalid = |result: Result<(), Error>, kernel: &str| match result {
        Err(Error::InvalidArgument { op, .. }) => assert_eq!(op, kernel),
        other => panic!("{kernel}: expected InvalidArgument, got {other:?}"),
    };
    let mismatch = |result: Result<(), Error>, kernel: &str| match result {
        Err(Error::ShapeMismatch { op, .. }) => assert_eq!(op, kernel),
        other => panic!("{kernel}: expected ShapeMismatch, got {other:?}"),
    };

    let exp =
        |layout| UnaryKernel::<Exp, f32>::forward(device, &Exp {}, InputView::new(Input::Shared(&buffer), layout));
    invalid(exp(past).map(drop), "Exp");
    // Ln's backward needs its input, and grad_output must hold every position.
    let mut grad = None;
    let short = <D as Storage<f32>>::try_from_host(device, vec![1.0; 5]).unwrap();
    let ln = UnaryKernel::<Ln, f32>::backward(
        device,
        &Ln {},
        OptionalView::new(None, fits),
        None,
        GradientSlot::new(&mut grad, 6),
        Input::Shared(&buffer),
    );
    invalid(ln, "Ln");
    let ln = UnaryKernel::<Ln, f32>::backward(
        device,
        &Ln {},
        OptionalView::new(Some(&buffer), fits),
        None,
        GradientSlot::new(&mut grad, 6),
        Input::Shared(&short),
    );
    invalid(ln, "Ln");
    let ln = UnaryKernel::<Ln, f32>::backward(
        device,
        &Ln {},
        OptionalView::new(Some(&buffer), fits),
        None,
        GradientSlot::new(&mut grad, 5),
        Input::Shared(&buffer),
    );
    invalid(ln, "Ln");
    assert!(grad.is_none());

    let mul = |lhs, rhs| {
        BinaryKernel::<Mul, f32>::forward(
            device,
            &Mul,
            InputView::new(Input::Shared(&buffer), lhs),
            View::new(&buffer, rhs),
        )
        .map(drop)
    };
    invalid(mul(fits, past), "Mul");
    mismatch(mul(fits, other_dims), "Mul");

    let mut target = <D as Storage<f32>>::try_from_host(device, vec![0.0; 6]).unwrap();
    let repeated = Layout::from_parts(&[2, 3], &[0, 1]);
    invalid(
        device.copy_strided(View::new(&buffer, fits), ViewMut::new(&mut target, repeated)),
        "copy_strided",
    );
    invalid(
        device.add_strided(View::new(&buffer, fits), ViewMut::new(&mut target, shifted)),
        "add_strided",
    );
    mismatch(
        device.copy_strided(View::new(&buffer, fits), ViewMut::new(&mut target, other_dims)),
        "copy_strided",
    );
    assert_eq!(<D as Storage<f32>>::try_to_host(device, &target).unwrap(), [0.0; 6]);

    invalid(
        device
            .compare(Comparison::Lt, View::new(&buffer, fits), View::new(&buffer, past))
            .map(drop),
        "lt",
    );
    mismatch(
        device
            .compare(Comparison::Eq, View::new(&buffer, fits), View::new(&buffer, other_dims))
            .map(drop),
        "eq",
    );
    invalid(
        device
            .compare_scalar(Comparison::Ge, View::new(&buffer, past), 0.0)
            .map(drop),
        "ge",
    );
    let condition = <D as Storage<bool>>::try_from_host(device, vec![true; 6]).unwrap();
    invalid(
        ChooseKernel::<f32>::forward(
            device,
            View::new(&condition, past),
            View::new(&buffer, past),
            View::new(&buffer, past),
        )
        .map(drop),
        "choose",
    );
    invalid(
        ChooseKernel::<f32>::backward(
            device,
            Operand::Lhs,
            View::new(&condition, fits),
            ViewMut::new(&mut target, fits),
            &short,
        ),
        "choose",
    );
    invalid(
        ConvertKernel::<f32, f64>::convert(device, View::new(&buffer, past)).map(drop),
        "convert",
    );
}

// ---- The tests ----

#[test]
fn the_comparisons_hold_with_the_cpu_on_both_sides() {
    // Checks the harness (placements within their buffers, results in step) where
    // there is no GPU.
    let cpu = Cpu::default();
    every_unary_op!(&cpu, f32);
    every_binary_op!(&cpu, f64);
    compare_matches(&cpu);
    choose_matches(&cpu);
    convert_matches(&cpu);
    copies_match(&cpu);
    refusals(&cpu);
}

#[test]
fn every_unary_op_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    every_unary_op!(&gpu, f32);
    every_unary_op!(&gpu, f64);
}

#[test]
fn every_binary_op_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    every_binary_op!(&gpu, f32);
    every_binary_op!(&gpu, f64);
}

#[test]
fn comparisons_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    compare_matches(&gpu);
}

#[test]
fn choose_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    choose_matches(&gpu);
}

#[test]
fn conversions_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    convert_matches(&gpu);
}

#[test]
fn copies_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    copies_match(&gpu);
}

#[test]
fn bad_arguments_are_errors_before_any_launch() {
    let Some(gpu) = gpu() else { return };
    refusals(&gpu);
    // Nothing was queued that fails later.
    gpu.synchronize().unwrap();
}

#[test]
fn exact_ops_match_the_cpu_bit_for_bit() {
    // Sums and products are rounded as on the CPU (no fused multiply-add), so an op
    // whose functions are exact gives the CPU's bits, gradients included, wherever no
    // element is added twice.
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let [contiguous, sliced, transposed, ..] = placements();
    for (seed, placement) in [contiguous, sliced, transposed].into_iter().enumerate() {
        // Any NaN is one: a GPU's arithmetic returns the canonical NaN, not the input's.
        let bits = |v: Vec<Vec<f32>>| -> Vec<Vec<u32>> {
            v.into_iter()
                .map(|v| {
                    v.into_iter()
                        .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                        .collect()
                })
                .collect()
        };
        let op = ScalarMul { scalar: 0.3f32 };
        assert_eq!(
            bits(run_unary(&gpu, &op, placement, seed as u64).unwrap()),
            bits(run_unary(&cpu, &op, placement, seed as u64).unwrap()),
            "{}",
            placement.name
        );
        let pair = (placement, contiguous);
        assert_eq!(
            bits(run_binary(&gpu, &Mul, pair, seed as u64).unwrap()),
            bits(run_binary(&cpu, &Mul, pair, seed as u64).unwrap()),
            "{}",
            placement.name
        );
    }
}

#[test]
fn a_grid_of_at_most_65536_blocks_covers_any_length() {
    // 2^24 + 1000 elements need more than the 2^16 blocks of 256 threads a launch has:
    // the kernels' grid-stride loops must cover the rest.
    let Some(gpu) = gpu() else { return };
    let len = (1 << 24) + 1000;
    let x: Vec<f32> = (0..len).map(|i| (i % 1024) as f32).collect();
    let buffer = gpu.try_from_host(x.clone()).unwrap();
    let layout = Layout::from_parts(&[len], &[1]);
    let op = ScalarAdd { scalar: 0.5f32 };
    let y =
        UnaryKernel::<ScalarAdd<f32>, f32>::forward(&gpu, &op, InputView::new(Input::Shared(&buffer), layout)).unwrap();
    let y = gpu.try_to_host(&y).unwrap();
    assert!(y.iter().zip(&x).all(|(y, x)| *y == x + 0.5));
}
