//! Every kernel of the element-wise, comparison, reduction, softmax, conversion and
//! indexing families refuses a view it cannot read safely — a layout that reaches past
//! its buffer, dims that disagree, a contiguous buffer too short, axes out of range —
//! with an `Err` naming the kernel and the sizes, before touching memory. Without the
//! checks at each kernel's entry these calls index past the end of a `Vec` and panic.

use ferrograd_cpu::{Cpu, CpuBuffer};
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::convert::ConvertKernel;
use ferrograd_device::ops::elementwise::{Add, BinaryKernel, Exp, Ln, Mul, Negate, Operand, UnaryKernel};
use ferrograd_device::ops::index::{GatherKernel, OneHotKernel, ScatterAddKernel};
use ferrograd_device::ops::reduce::{
    ArgExtremumKernel, Extremum, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, Spread, SumKernel,
    VarianceKernel,
};
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::view::{GradientSlot, InputView, OptionalView};
use ferrograd_device::{Error, Input, Layout, Storage, View, ViewMut};
use std::fmt::Debug;

/// Asserts `result` is an error whose message contains every one of `parts` (the
/// kernel's name first, then the sizes).
#[track_caller]
fn assert_refused<T: Debug>(result: Result<T, Error>, parts: &[&str]) {
    let message = match result {
        Ok(value) => panic!("expected an error mentioning {parts:?}, got Ok({value:?})"),
        Err(error) => error.to_string(),
    };
    assert!(
        message.starts_with(&format!("{}: ", parts[0])),
        "{message:?} does not start with the kernel's name {:?}",
        parts[0]
    );
    for part in parts {
        assert!(message.contains(part), "{message:?} does not mention {part:?}");
    }
}

fn buffer(cpu: &Cpu, values: &[f64]) -> CpuBuffer<f64> {
    cpu.try_from_host(values.to_vec()).unwrap()
}

/// Six elements, `0, 1, …, 5`.
fn six(cpu: &Cpu) -> CpuBuffer<f64> {
    buffer(cpu, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
}

/// `(2, 3)`, row-major.
fn rows() -> Layout {
    Layout::from_parts(&[2, 3], &[3, 1])
}

/// `(2, 3)` from element 1: reaches element 6, one past a 6-element buffer.
fn shifted() -> Layout {
    rows().with_offset(1)
}

/// `(3, 2)`, row-major: dims that disagree with [`rows`].
fn columns() -> Layout {
    Layout::from_parts(&[3, 2], &[2, 1])
}

const PAST: &str = "reaches element 6 of a buffer of 6 elements";

#[test]
fn unary_kernels_refuse_bad_views() {
    let cpu = Cpu::default();
    let x = six(&cpu);
    assert_refused(
        UnaryKernel::forward(&cpu, &Exp {}, InputView::new(Input::Shared(&x), shifted())),
        &["Exp", "input", PAST, "offset 1"],
    );
    // A unique buffer would be written in place: it is refused just the same.
    assert_refused(
        UnaryKernel::forward(&cpu, &Negate {}, InputView::new(Input::Unique(six(&cpu)), shifted())),
        &["Negate", "input", PAST],
    );

    let dy = six(&cpu);
    // The input's values, read for `ln`'s derivative, past the buffer's end.
    let mut grad = None;
    assert_refused(
        UnaryKernel::backward(
            &cpu,
            &Ln {},
            OptionalView::new(Some(&x), shifted()),
            None,
            GradientSlot::new(&mut grad, 7),
            Input::Shared(&dy),
        ),
        &["Ln", "input", PAST],
    );
    // A gradient of 6 elements addressed through a layout that needs 7.
    assert_refused(
        UnaryKernel::backward(
            &cpu,
            &Negate {},
            OptionalView::new(None, shifted()),
            None,
            GradientSlot::new(&mut grad, 6),
            Input::Shared(&dy),
        ),
        &["Negate", "grad_input", PAST],
    );
    // A gradient already there, shorter than the length promised.
    let mut short = Some(buffer(&cpu, &[0.0; 4]));
    assert_refused(
        UnaryKernel::backward(
            &cpu,
            &Negate {},
            OptionalView::new(None, rows()),
            None,
            GradientSlot::new(&mut short, 6),
            Input::Shared(&dy),
        ),
        &["Negate", "grad_input", "reaches element 5 of a buffer of 4 elements"],
    );
    // The output's gradient and the saved output are contiguous: too short is refused.
    let three = buffer(&cpu, &[1.0; 3]);
    assert_refused(
        UnaryKernel::backward(
            &cpu,
            &Negate {},
            OptionalView::new(None, rows()),
            None,
            GradientSlot::new(&mut grad, 6),
            Input::Shared(&three),
        ),
        &["Negate", "grad_output has 3 elements, fewer than the 6"],
    );
    assert_refused(
        UnaryKernel::backward(
            &cpu,
            &Exp {},
            OptionalView::new(None, rows()),
            Some(&three),
            GradientSlot::new(&mut grad, 6),
            Input::Shared(&dy),
        ),
        &["Exp", "output has 3 elements, fewer than the 6"],
    );
    assert!(grad.is_none(), "nothing is stored when the arguments are refused");
}

#[test]
fn binary_kernels_refuse_bad_views() {
    let cpu = Cpu::default();
    let (x, y) = (six(&cpu), six(&cpu));
    assert_refused(
        BinaryKernel::forward(
            &cpu,
            &Add,
            InputView::new(Input::Shared(&x), shifted()),
            View::new(&y, rows()),
        ),
        &["Add", "lhs", PAST],
    );
    assert_refused(
        BinaryKernel::forward(
            &cpu,
            &Mul,
            InputView::new(Input::Shared(&x), rows()),
            View::new(&y, shifted()),
        ),
        &["Mul", "rhs", PAST],
    );
    assert_refused(
        BinaryKernel::forward(
            &cpu,
            &Add,
            InputView::new(Input::Shared(&x), rows()),
            View::new(&y, columns()),
        ),
        &["Add", "lhs has dims (2, 3) but rhs has dims (3, 2)"],
    );

    let dy = six(&cpu);
    let mut grad = None;
    assert_refused(
        BinaryKernel::backward(
            &cpu,
            &Mul,
            Operand::Rhs,
            OptionalView::new(Some(&x), rows()),
            OptionalView::new(Some(&y), shifted()),
            GradientSlot::new(&mut grad, 7),
            Input::Shared(&dy),
        ),
        &["Mul", "rhs", PAST],
    );
    // `x + y` reads no operand, but still addresses the gradient through its layout.
    assert_refused(
        BinaryKernel::backward(
            &cpu,
            &Add,
            Operand::Lhs,
            OptionalView::new(None, shifted()),
            OptionalView::new(None, rows()),
            GradientSlot::new(&mut grad, 6),
            Input::Shared(&dy),
        ),
        &["Add", "grad_lhs", PAST],
    );
    assert_refused(
        BinaryKernel::backward(
            &cpu,
            &Add,
            Operand::Rhs,
            OptionalView::new(None, rows()),
            OptionalView::new(None, columns()),
            GradientSlot::new(&mut grad, 6),
            Input::Shared(&dy),
        ),
        &["Add", "(2, 3)", "(3, 2)"],
    );
    assert_refused(
        BinaryKernel::backward(
            &cpu,
            &Add,
            Operand::Rhs,
            OptionalView::new(None, rows()),
            OptionalView::new(None, rows()),
            GradientSlot::new(&mut grad, 6),
            Input::Shared(&buffer(&cpu, &[1.0; 5])),
        ),
        &["Add", "grad_output has 5 elements, fewer than the 6"],
    );
    assert!(grad.is_none());
}

#[test]
fn comparisons_and_choose_refuse_bad_views() {
    let cpu = Cpu::default();
    let (x, y) = (six(&cpu), six(&cpu));
    assert_refused(
        CompareKernel::compare(&cpu, Comparison::Lt, View::new(&x, shifted()), View::new(&y, rows())),
        &["lt", "lhs", PAST],
    );
    assert_refused(
        CompareKernel::compare(&cpu, Comparison::Eq, View::new(&x, rows()), View::new(&y, columns())),
        &["eq", "lhs has dims (2, 3) but rhs has dims (3, 2)"],
    );
    assert_refused(
        CompareKernel::compare_scalar(&cpu, Comparison::Ge, View::new(&x, shifted()), 1.0),
        &["ge", "lhs", PAST],
    );

    let mask: CpuBuffer<bool> = cpu.try_from_host(vec![true, false, true, false, true, false]).unwrap();
    assert_refused(
        ChooseKernel::forward(
            &cpu,
            View::new(&mask, shifted()),
            View::new(&x, rows()),
            View::new(&y, rows()),
        ),
        &["choose", "condition", PAST],
    );
    assert_refused(
        ChooseKernel::forward(
            &cpu,
            View::new(&mask, rows()),
            View::new(&x, rows()),
            View::new(&y, shifted()),
        ),
        &["choose", "on_false", PAST],
    );
    assert_refused(
        ChooseKernel::forward(
            &cpu,
            View::new(&mask, rows()),
            View::new(&x, columns()),
            View::new(&y, rows()),
        ),
        &["choose", "condition has dims (2, 3) but on_true has dims (3, 2)"],
    );

    let dy = six(&cpu);
    let mut grad = six(&cpu);
    assert_refused(
        ChooseKernel::backward(
            &cpu,
            Operand::Lhs,
            View::new(&mask, rows()),
            ViewMut::new(&mut grad, shifted()),
            &dy,
        ),
        &["choose", "grad", PAST],
    );
    assert_refused(
        ChooseKernel::backward(
            &cpu,
            Operand::Rhs,
            View::new(&mask, rows()),
            ViewMut::new(&mut grad, rows()),
            &buffer(&cpu, &[1.0; 2]),
        ),
        &["choose", "grad_output has 2 elements, fewer than the 6"],
    );
    assert_eq!(grad, six(&cpu), "nothing is written when the arguments are refused");
}

#[test]
fn reductions_refuse_bad_views_and_axes() {
    let cpu = Cpu::default();
    let x = six(&cpu);
    assert_refused(
        SumKernel::forward(&cpu, View::new(&x, shifted()), &[1]),
        &["sum", "input", PAST],
    );
    assert_refused(
        SumKernel::forward(&cpu, View::new(&x, rows()), &[2]),
        &["sum", "axes [2] of a rank-2 tensor"],
    );
    // A repeated axis would count its elements twice, and read 9 of 6 elements.
    assert_refused(
        SumKernel::forward(&cpu, View::new(&x, rows()), &[1, 1]),
        &["sum", "axes [1, 1]", "sorted and distinct"],
    );
    assert_refused(
        ExtremumKernel::forward(&cpu, Extremum::Max, View::new(&x, shifted()), &[0]),
        &["max", "input", PAST],
    );
    assert_refused(
        ArgExtremumKernel::forward(&cpu, Extremum::Min, View::new(&x, shifted()), &[0, 1]),
        &["argmin", "input", PAST],
    );
    assert_refused(
        ExtremumWithIndicesKernel::forward(&cpu, Extremum::Max, View::new(&x, shifted()), 1),
        &["max_with_indices", "input", PAST],
    );
    assert_refused(
        VarianceKernel::forward(&cpu, Spread::StdDev, 1.0, View::new(&x, shifted()), &[1]),
        &["std", "input", PAST],
    );
    assert_refused(
        LogSumExpKernel::forward(&cpu, View::new(&x, rows()), &[1, 0]),
        &["logsumexp", "axes [1, 0]"],
    );

    // Backward: the gradient addressed past its buffer, and per-group buffers (one
    // value per row, 2 here) too short.
    let (output, dy) = (buffer(&cpu, &[2.0, 5.0]), buffer(&cpu, &[1.0, 1.0]));
    let one = buffer(&cpu, &[1.0]);
    let mut grad = buffer(&cpu, &[0.0; 6]);
    assert_refused(
        SumKernel::backward(&cpu, ViewMut::new(&mut grad, shifted()), &[1], &dy),
        &["sum", "grad_input", PAST],
    );
    assert_refused(
        SumKernel::backward(&cpu, ViewMut::new(&mut grad, rows()), &[1], &one),
        &["sum", "grad_output has 1 elements, fewer than the 2"],
    );
    let mut short = buffer(&cpu, &[0.0; 5]);
    assert_refused(
        ExtremumKernel::backward(&cpu, View::new(&x, rows()), &[1], &output, &mut short, &dy),
        &["max / min", "grad_input reaches element 5 of a buffer of 5 elements"],
    );
    assert_refused(
        ExtremumKernel::backward(&cpu, View::new(&x, rows()), &[1], &one, &mut grad, &dy),
        &["max / min", "output has 1 elements, fewer than the 2"],
    );
    assert_refused(
        ExtremumWithIndicesKernel::backward(
            &cpu,
            ViewMut::new(&mut grad, rows()),
            1,
            &cpu.try_from_host(vec![0usize]).unwrap(),
            &dy,
        ),
        &[
            "max_with_indices / min_with_indices",
            "indices has 1 elements, fewer than the 2",
        ],
    );
    assert_refused(
        ExtremumWithIndicesKernel::backward(
            &cpu,
            ViewMut::new(&mut grad, shifted()),
            1,
            &cpu.try_from_host(vec![0usize, 0]).unwrap(),
            &dy,
        ),
        &["max_with_indices / min_with_indices", "grad_input", PAST],
    );
    assert_refused(
        VarianceKernel::backward(&cpu, 1.0, View::new(&x, rows()), &[1], Some(&one), &mut grad, &dy),
        &["var / std", "std has 1 elements, fewer than the 2"],
    );
    assert_refused(
        VarianceKernel::backward(&cpu, 1.0, View::new(&x, shifted()), &[1], None, &mut grad, &dy),
        &["var / std", "input", PAST],
    );
    assert_refused(
        LogSumExpKernel::backward(&cpu, View::new(&x, rows()), &[1], &output, &mut grad, &one),
        &["logsumexp", "grad_output has 1 elements, fewer than the 2"],
    );
    assert_eq!(
        grad,
        buffer(&cpu, &[0.0; 6]),
        "nothing is written when the arguments are refused"
    );
}

#[test]
fn softmax_refuses_bad_views_and_axes() {
    let cpu = Cpu::default();
    let x = six(&cpu);
    assert_refused(
        SoftmaxKernel::forward(
            &cpu,
            SoftmaxKind::Softmax,
            InputView::new(Input::Shared(&x), shifted()),
            &[1],
        ),
        &["softmax", "input", PAST],
    );
    assert_refused(
        SoftmaxKernel::forward(
            &cpu,
            SoftmaxKind::LogSoftmax,
            InputView::new(Input::Unique(six(&cpu)), rows()),
            &[3],
        ),
        &["log_softmax", "axes [3] of a rank-2 tensor"],
    );
    let (y, dy) = (six(&cpu), six(&cpu));
    let mut grad = buffer(&cpu, &[0.0; 6]);
    assert_refused(
        SoftmaxKernel::backward(
            &cpu,
            SoftmaxKind::Softmax,
            ViewMut::new(&mut grad, shifted()),
            &[1],
            &y,
            &dy,
        ),
        &["softmax", "grad_input", PAST],
    );
    assert_refused(
        SoftmaxKernel::backward(
            &cpu,
            SoftmaxKind::LogSoftmax,
            ViewMut::new(&mut grad, rows()),
            &[1],
            &buffer(&cpu, &[0.5; 4]),
            &dy,
        ),
        &["log_softmax", "output has 4 elements, fewer than the 6"],
    );
    assert_eq!(grad, buffer(&cpu, &[0.0; 6]));
}

#[test]
fn conversion_refuses_a_layout_past_its_buffer() {
    let cpu = Cpu::default();
    let x = six(&cpu);
    assert_refused(
        ConvertKernel::<f64, f32>::convert(&cpu, View::new(&x, shifted())),
        &["convert", "input", PAST, "dims (2, 3), strides (3, 1), offset 1"],
    );
    // A broadcast read stays inside the buffer, and is fine.
    let broadcast = Layout::from_parts(&[4, 6], &[0, 1]);
    let out: CpuBuffer<f32> = ConvertKernel::<f64, f32>::convert(&cpu, View::new(&x, broadcast)).unwrap();
    assert_eq!(out.len(), 24);
}

#[test]
fn indexing_refuses_bad_views() {
    let cpu = Cpu::default();
    let x = six(&cpu);
    let index: CpuBuffer<usize> = cpu.try_from_host(vec![0, 2, 1, 0]).unwrap();
    let index_rows = Layout::from_parts(&[2, 2], &[2, 1]);
    // (2, 2) from element 1 reaches element 4 of the 4 indices.
    let index_past = index_rows.with_offset(1);
    assert_refused(
        GatherKernel::gather(
            &cpu,
            "gather",
            View::new(&x, shifted()),
            1,
            View::new(&index, index_rows),
        ),
        &["gather", "input", PAST],
    );
    assert_refused(
        GatherKernel::gather(
            &cpu,
            "index_select",
            View::new(&x, rows()),
            1,
            View::new(&index, index_past),
        ),
        &["index_select", "index reaches element 4 of a buffer of 4 elements"],
    );

    let src = buffer(&cpu, &[1.0; 4]);
    let mut dst = buffer(&cpu, &[0.0; 6]);
    assert_refused(
        ScatterAddKernel::scatter_add(
            &cpu,
            "scatter_add",
            ViewMut::new(&mut dst, shifted()),
            1,
            View::new(&index, index_rows),
            View::new(&src, index_rows),
        ),
        &["scatter_add", "dst", PAST],
    );
    assert_refused(
        ScatterAddKernel::scatter_add(
            &cpu,
            "scatter_add",
            ViewMut::new(&mut dst, rows()),
            1,
            View::new(&index, index_rows),
            View::new(&src, Layout::from_parts(&[2, 2], &[2, 1]).with_offset(2)),
        ),
        &["scatter_add", "src reaches element 5 of a buffer of 4 elements"],
    );
    assert_refused(
        ScatterAddKernel::scatter_add(
            &cpu,
            "scatter_add",
            ViewMut::new(&mut dst, rows()),
            1,
            View::new(&index, index_rows),
            View::new(&x, Layout::from_parts(&[2, 3], &[3, 1])),
        ),
        &["scatter_add", "[2, 2]", "[2, 3]"],
    );
    assert_refused(
        ScatterAddKernel::gather_add(
            &cpu,
            "gather_backward",
            View::new(&x, rows()),
            1,
            View::new(&index, index_rows),
            ViewMut::new(&mut dst, Layout::from_parts(&[2, 2], &[2, 1]).with_offset(3)),
        ),
        &["gather_backward", "dst reaches element 6 of a buffer of 6 elements"],
    );
    assert_eq!(
        dst,
        buffer(&cpu, &[0.0; 6]),
        "nothing is written when the arguments are refused"
    );

    assert_refused(
        OneHotKernel::<f64>::one_hot(&cpu, View::new(&index, index_past), 3),
        &["one_hot", "index reaches element 4 of a buffer of 4 elements"],
    );
}

/// Gradients accumulate every position that reads an element: a gradient layout that
/// repeats elements (a broadcast input's) is accepted, and each position adds once.
#[test]
fn gradients_through_repeating_layouts_accumulate() {
    let cpu = Cpu::default();
    // A 3-vector broadcast to (2, 3).
    let broadcast = Layout::from_parts(&[2, 3], &[0, 1]);
    let mask: CpuBuffer<bool> = cpu.try_from_host(vec![true; 6]).unwrap();
    let mut grad = buffer(&cpu, &[0.0; 3]);
    ChooseKernel::backward(
        &cpu,
        Operand::Lhs,
        View::new(&mask, rows()),
        ViewMut::new(&mut grad, broadcast),
        &six(&cpu),
    )
    .unwrap();
    assert_eq!(grad, buffer(&cpu, &[3.0, 5.0, 7.0]));

    let mut grad = buffer(&cpu, &[0.0; 3]);
    SumKernel::backward(
        &cpu,
        ViewMut::new(&mut grad, broadcast),
        &[1],
        &buffer(&cpu, &[1.0, 2.0]),
    )
    .unwrap();
    assert_eq!(grad, buffer(&cpu, &[3.0, 3.0, 3.0]));

    let mut slot = None;
    BinaryKernel::backward(
        &cpu,
        &Add,
        Operand::Rhs,
        OptionalView::new(None, rows()),
        OptionalView::new(None, broadcast),
        GradientSlot::new(&mut slot, 3),
        Input::Shared(&six(&cpu)),
    )
    .unwrap();
    assert_eq!(slot.unwrap(), buffer(&cpu, &[3.0, 5.0, 7.0]));
}
