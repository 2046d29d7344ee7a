//! Element-wise ops: every declared unary and binary op, forward and backward.

use super::check::{Failure, Family, Problem, Report, Tolerance};
use super::inputs::{ELEMENTWISE_DIMS, Host, Placement, Random, Values, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::elementwise::*;
use ferrograd_device::view::{GradientSlot, InputView, OptionalView};
use ferrograd_device::{Dtype, Error, Input, Layout, View};

/// Declares the unary ops the suite runs, each with the parameters it tries: the
/// capability trait [`EveryUnaryKernel`], the list of names [`UNARY_OPS`] (compared with
/// the device crate's declarations), and the loop over them. Written once so the three
/// cannot drift apart.
macro_rules! unary_suite {
    ($($name:ident $(<$e:ident>)? => [$($instance:expr),+ $(,)?];)*) => {
        /// A [`UnaryKernel`] for every declared unary op: what [`unary_kernels`] needs.
        /// Implemented for every device that has them all.
        pub trait EveryUnaryKernel<E: Dtype>: $(UnaryKernel<$name $(<$e>)?, E> +)* {}
        impl<E: Dtype, D: $(UnaryKernel<$name $(<$e>)?, E> +)*> EveryUnaryKernel<E> for D {}

        /// The unary ops [`unary_kernels`] runs, by name.
        pub const UNARY_OPS: &[&str] = &[$(stringify!($name)),*];

        fn each_unary_op<E: Dtype, D: EveryUnaryKernel<E>>(
            device: &D,
            family: &mut Family,
            random: &mut Random,
        ) -> Result<(), Failure>
        where
            Cpu: EveryUnaryKernel<E>,
        {
            $(
                for op in [$($instance),+] {
                    unary_op(device, &op, family, random)?;
                }
            )*
            Ok(())
        }
    };
}

unary_suite! {
    Negate => [Negate {}];
    Abs => [Abs {}];
    Exp => [Exp {}];
    Ln => [Ln {}];
    Sqrt => [Sqrt {}];
    Square => [Square {}];
    Powf<E> => [
        Powf { exponent: E::from_f64(2.5) },
        Powf { exponent: E::from_f64(0.0) },
        Powf { exponent: E::from_f64(-1.5) },
        Powf { exponent: E::from_f64(3.0) },
    ];
    Powi => [Powi { exponent: 3 }, Powi { exponent: 0 }, Powi { exponent: -2 }];
    Recip => [Recip {}];
    Sin => [Sin {}];
    Cos => [Cos {}];
    Tanh => [Tanh {}];
    Sigmoid => [Sigmoid {}];
    Relu => [Relu {}];
    LeakyRelu<E> => [LeakyRelu { negative_slope: E::from_f64(0.01) }, LeakyRelu { negative_slope: E::from_f64(-0.5) }];
    Gelu => [Gelu {}];
    GeluTanh => [GeluTanh {}];
    Silu => [Silu {}];
    Softplus<E> => [
        Softplus { beta: E::from_f64(1.0), threshold: E::from_f64(20.0) },
        Softplus { beta: E::from_f64(2.0), threshold: E::from_f64(1.0) },
    ];
    Clamp<E> => [
        Clamp { min: E::from_f64(-0.5), max: E::from_f64(0.5) },
        Clamp { min: E::from_f64(1.0), max: E::from_f64(1.0) },
    ];
    NansTo<E> => [NansTo { value: E::from_f64(0.0) }, NansTo { value: E::from_f64(-1.0) }];
    ScalarAdd<E> => [ScalarAdd { scalar: E::from_f64(0.5) }];
    ScalarSub<E> => [ScalarSub { scalar: E::from_f64(1.5) }];
    ScalarMul<E> => [ScalarMul { scalar: E::from_f64(-2.0) }, ScalarMul { scalar: E::from_f64(0.0) }];
    ScalarDiv<E> => [ScalarDiv { scalar: E::from_f64(4.0) }, ScalarDiv { scalar: E::from_f64(0.0) }];
}

/// Declares the binary ops the suite runs: the capability trait [`EveryBinaryKernel`],
/// [`BINARY_OPS`], and the loop over them.
macro_rules! binary_suite {
    ($($name:ident),* $(,)?) => {
        /// A [`BinaryKernel`] for every declared binary op: what [`binary_kernels`]
        /// needs. Implemented for every device that has them all.
        pub trait EveryBinaryKernel<E: Dtype>: $(BinaryKernel<$name, E> +)* {}
        impl<E: Dtype, D: $(BinaryKernel<$name, E> +)*> EveryBinaryKernel<E> for D {}

        /// The binary ops [`binary_kernels`] runs, by name.
        pub const BINARY_OPS: &[&str] = &[$(stringify!($name)),*];

        fn each_binary_op<E: Dtype, D: EveryBinaryKernel<E>>(
            device: &D,
            family: &mut Family,
            random: &mut Random,
        ) -> Result<(), Failure>
        where
            Cpu: EveryBinaryKernel<E>,
        {
            $(binary_op(device, &$name, family, random)?;)*
            Ok(())
        }
    };
}

binary_suite!(Add, Sub, Mul, Div, Maximum, Minimum);

/// `Err` naming the ops declared in `specs` that `covered` lacks (or lists without a
/// declaration).
pub(crate) fn check_coverage(family: &str, covered: &[&str], specs: &[OpSpec]) -> Result<(), Failure> {
    let missing: Vec<&str> = specs
        .iter()
        .map(|spec| spec.name)
        .filter(|name| !covered.contains(name))
        .collect();
    let unknown: Vec<&str> = covered
        .iter()
        .copied()
        .filter(|name| !specs.iter().any(|spec| spec.name == *name))
        .collect();
    if missing.is_empty() && unknown.is_empty() {
        return Ok(());
    }
    Err(Failure {
        kernel: format!("{family} ops"),
        case: "every declared op".into(),
        problem: Problem::Incomplete(format!(
            "declared but not run: {missing:?}; run but not declared: {unknown:?}"
        )),
    })
}

/// Every declared unary op ([`UNARY_OPS`], checked against
/// [`unary_op_specs`]), with several parameters where it has some, on inputs of every
/// placement (contiguous, permuted, sliced with an offset, broadcast on the first, the
/// last or the odd axes) and every dims of the suite (a scalar, lengths 0, 1, 7, 33 and
/// 257, size-1 axes, ranks up to 6), holding NaN, ±∞, ±0 and the ops' thresholds among
/// ordinary values.
///
/// Forward with a shared and with a unique input (which the kernel may overwrite);
/// backward reading only the buffer the op saves ([`UnaryOp::SAVES`]), with a shared and
/// a unique output gradient, into a new gradient (the first contribution) and into an
/// existing one. Bad layouts: an input past its buffer, a gradient slot too short, a
/// short output gradient.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn unary_kernels<E: Dtype, D: EveryUnaryKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: EveryUnaryKernel<E>,
{
    check_coverage("unary", UNARY_OPS, unary_op_specs())?;
    let mut family = Family::new("unary", tolerance);
    let mut random = Random::new(1);
    each_unary_op(device, &mut family, &mut random)?;
    unary_refusals(device, &mut family)?;
    Ok(family.finish())
}

fn unary_forward<Op: UnaryOp, E: Dtype, D: UnaryKernel<Op, E>>(
    device: &D,
    op: &Op,
    input: &Host<E>,
    unique: bool,
) -> Result<Vec<E>, Error> {
    let buffer = input.upload(device)?;
    let output = if unique {
        device.forward(op, InputView::new(Input::Unique(buffer), input.layout))?
    } else {
        device.forward(op, InputView::new(Input::Shared(&buffer), input.layout))?
    };
    device.try_to_host(&output)
}

/// The input's gradient after one backward step: `existing` is the gradient already
/// there (`None`: this is the first contribution).
fn unary_backward<Op: UnaryOp, E: Dtype, D: UnaryKernel<Op, E>>(
    device: &D,
    op: &Op,
    input: &Host<E>,
    output: &[E],
    existing: Option<&[E]>,
    grad_output: &[E],
    unique: bool,
) -> Result<Vec<E>, Error> {
    // Only the buffer the op saves is passed: a device must not need the other.
    let saved_input = match Op::SAVES {
        Saved::Input => Some(input.upload(device)?),
        _ => None,
    };
    let saved_output = match Op::SAVES {
        Saved::Output => Some(upload(device, output)?),
        _ => None,
    };
    let mut slot = existing.map(|values| upload(device, values)).transpose()?;
    let grad_output = upload(device, grad_output)?;
    let grad_output = if unique {
        Input::Unique(grad_output)
    } else {
        Input::Shared(&grad_output)
    };
    device.backward(
        op,
        OptionalView::new(saved_input.as_ref(), input.layout),
        saved_output.as_ref(),
        GradientSlot::new(&mut slot, input.data.len()),
        grad_output,
    )?;
    match slot {
        Some(gradient) => device.try_to_host(&gradient),
        None => Err(nothing_stored(Op::NAME)),
    }
}

fn nothing_stored(op: &'static str) -> Error {
    Error::InvalidArgument {
        op,
        message: "backward returned Ok but stored no gradient in the empty slot".into(),
    }
}

fn unary_op<Op: UnaryOp, E: Dtype, D: UnaryKernel<Op, E>>(
    device: &D,
    op: &Op,
    family: &mut Family,
    random: &mut Random,
) -> Result<(), Failure>
where
    Cpu: UnaryKernel<Op, E>,
{
    let cpu = Cpu::default();
    let forward = format!("{} forward", Op::NAME);
    let backward = format!("{} backward", Op::NAME);
    for dims in ELEMENTWISE_DIMS {
        for placement in Placement::ALL {
            let input = random.tensor::<E>(placement, dims, Values::Specials);
            let described = format!("{op:?} of {}", input.describe());
            for unique in [false, true] {
                let case = format!("{described}, input {}", if unique { "unique" } else { "shared" });
                let reference = unary_forward(&cpu, op, &input, unique);
                family.check(&forward, &case, reference, unary_forward(device, op, &input, unique))?;
            }
            let output = family.reference(&forward, &described, unary_forward(&cpu, op, &input, false))?;
            let grad_output = random.values::<E>(output.len(), Values::Finite);
            let existing = random.values::<E>(input.data.len(), Values::Finite);
            for first in [true, false] {
                for unique in [false, true] {
                    let case = format!(
                        "{described}, {} gradient, output gradient {}",
                        if first { "first (empty slot)" } else { "existing" },
                        if unique { "unique" } else { "shared" }
                    );
                    let existing = (!first).then_some(&existing[..]);
                    family.check(
                        &backward,
                        &case,
                        unary_backward(&cpu, op, &input, &output, existing, &grad_output, unique),
                        unary_backward(device, op, &input, &output, existing, &grad_output, unique),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// A `(2, 3)` layout from element 1 of a 6-element buffer: one past its end.
pub(crate) fn past_the_end() -> Layout {
    Layout::from_parts(&[2, 3], &[3, 1]).with_offset(1)
}

/// `(2, 3)`, row-major.
pub(crate) fn rows() -> Layout {
    Layout::from_parts(&[2, 3], &[3, 1])
}

fn unary_refusals<E: Dtype, D: UnaryKernel<Exp, E> + UnaryKernel<Ln, E> + UnaryKernel<Negate, E>>(
    device: &D,
    family: &mut Family,
) -> Result<(), Failure>
where
    Cpu: UnaryKernel<Exp, E> + UnaryKernel<Ln, E> + UnaryKernel<Negate, E>,
{
    let cpu = Cpu::default();
    let six: Vec<E> = (0..6).map(|i| E::from_f64(i as f64)).collect();
    let past = Host {
        data: six.clone(),
        layout: past_the_end(),
        placement: "past the end",
    };
    for unique in [false, true] {
        let case = format!("Exp of {}, input unique: {unique}", past.describe());
        family.refusal(
            "Exp forward",
            &case,
            unary_forward(&cpu, &Exp {}, &past, unique),
            unary_forward(device, &Exp {}, &past, unique),
        )?;
    }
    // The saved input read past its end.
    let case = format!("Ln backward, input {}", past.describe());
    let ones = vec![E::ONE; 6];
    family.refusal(
        "Ln backward",
        &case,
        unary_backward(&cpu, &Ln {}, &past, &ones, None, &ones, false),
        unary_backward(device, &Ln {}, &past, &ones, None, &ones, false),
    )?;
    // A new gradient of 6 elements addressed through a layout that reaches a 7th.
    let case = format!("Negate backward, first gradient, input {}", past.describe());
    family.refusal(
        "Negate backward",
        &case,
        unary_backward(&cpu, &Negate {}, &past, &ones, None, &ones, false),
        unary_backward(device, &Negate {}, &past, &ones, None, &ones, false),
    )?;
    // An existing gradient shorter than the layout reaches, and a short output gradient:
    // the existing gradient must come back unchanged.
    let fits = Host {
        data: six.clone(),
        layout: rows(),
        placement: "contiguous",
    };
    for (what, existing_len, grad_output_len) in [("existing gradient of 4", 4, 6), ("output gradient of 3", 6, 3)] {
        let case = format!("Negate backward of {}, {what}", fits.describe());
        let existing = vec![E::ONE; existing_len];
        let grad_output = vec![E::ONE; grad_output_len];
        let (reference, _) = negate_backward_into(&cpu, &fits, &existing, &grad_output);
        let (actual, after) = negate_backward_into(device, &fits, &existing, &grad_output);
        family.refusal("Negate backward", &case, reference, actual)?;
        family.unchanged("Negate backward", &case, &existing, &after)?;
    }
    Ok(())
}

/// `Negate`'s backward step into an existing gradient, and that gradient afterwards.
fn negate_backward_into<E: Dtype, D: UnaryKernel<Negate, E>>(
    device: &D,
    input: &Host<E>,
    existing: &[E],
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let mut slot = Some(upload(device, existing)?);
        let grad_output = upload(device, grad_output)?;
        let result = device.backward(
            &Negate {},
            OptionalView::new(None, input.layout),
            None,
            GradientSlot::new(&mut slot, input.data.len()),
            Input::Shared(&grad_output),
        );
        let after = match &slot {
            Some(buffer) => device.try_to_host(buffer)?,
            None => Vec::new(),
        };
        Ok((result, after))
    };
    match attempt() {
        Ok(outcome) => outcome,
        Err(error) => (Err(error), existing.to_vec()),
    }
}

/// Every declared binary op ([`BINARY_OPS`], checked against [`binary_op_specs`]) on
/// pairs of placements (both contiguous, one broadcast on its leading or trailing axes
/// against a dense or strided other, both strided) over the element-wise dims, with
/// special values and ties between the operands (where `maximum` and `minimum` split
/// their gradient).
///
/// Forward with a shared and a unique left-hand side; backward for each operand,
/// passing the operands only when the op reads them
/// ([`BinaryOp::DERIVATIVES_READ_OPERANDS`]), into a new and an existing gradient, with a
/// shared and a unique output gradient. Bad layouts: an operand past its buffer, dims
/// that disagree, a short output gradient.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn binary_kernels<E: Dtype, D: EveryBinaryKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: EveryBinaryKernel<E>,
{
    check_coverage("binary", BINARY_OPS, binary_op_specs())?;
    let mut family = Family::new("binary", tolerance);
    let mut random = Random::new(2);
    each_binary_op(device, &mut family, &mut random)?;
    binary_refusals(device, &mut family)?;
    Ok(family.finish())
}

/// Pairs of placements for two operands.
pub(crate) const PAIRS: [(Placement, Placement); 8] = [
    (Placement::CONTIGUOUS, Placement::CONTIGUOUS),
    (Placement::PERMUTED, Placement::SLICED),
    (Placement::SLICED, Placement::BROADCAST_LEADING),
    (Placement::BROADCAST_LEADING, Placement::CONTIGUOUS),
    (Placement::CONTIGUOUS, Placement::BROADCAST_LEADING),
    (Placement::CONTIGUOUS, Placement::BROADCAST_TRAILING),
    (Placement::BROADCAST_TRAILING, Placement::MIXED),
    (Placement::MIXED, Placement::PERMUTED),
];

/// Makes about a quarter of `rhs`'s elements equal to `lhs`'s at the same position.
pub(crate) fn add_ties<E: Dtype>(random: &mut Random, lhs: &Host<E>, rhs: &mut Host<E>) {
    let pairs: Vec<(usize, usize)> = lhs.layout.offsets().zip(rhs.layout.offsets()).collect();
    for (i, j) in pairs {
        if random.below(4) == 0 {
            rhs.data[j] = lhs.data[i];
        }
    }
}

fn binary_forward<Op: BinaryOp, E: Dtype, D: BinaryKernel<Op, E>>(
    device: &D,
    op: &Op,
    lhs: &Host<E>,
    rhs: &Host<E>,
    unique: bool,
) -> Result<Vec<E>, Error> {
    let (x, y) = (lhs.upload(device)?, rhs.upload(device)?);
    let rhs = View::new(&y, rhs.layout);
    let output = if unique {
        device.forward(op, InputView::new(Input::Unique(x), lhs.layout), rhs)?
    } else {
        device.forward(op, InputView::new(Input::Shared(&x), lhs.layout), rhs)?
    };
    device.try_to_host(&output)
}

#[allow(clippy::too_many_arguments)]
fn binary_backward<Op: BinaryOp, E: Dtype, D: BinaryKernel<Op, E>>(
    device: &D,
    op: &Op,
    operand: Operand,
    lhs: &Host<E>,
    rhs: &Host<E>,
    existing: Option<&[E]>,
    grad_output: &[E],
    unique: bool,
) -> Result<Vec<E>, Error> {
    let reads = Op::DERIVATIVES_READ_OPERANDS;
    let x = if reads { Some(lhs.upload(device)?) } else { None };
    let y = if reads { Some(rhs.upload(device)?) } else { None };
    let len = match operand {
        Operand::Lhs => lhs.data.len(),
        Operand::Rhs => rhs.data.len(),
    };
    let mut slot = existing.map(|values| upload(device, values)).transpose()?;
    let grad_output = upload(device, grad_output)?;
    let grad_output = if unique {
        Input::Unique(grad_output)
    } else {
        Input::Shared(&grad_output)
    };
    device.backward(
        op,
        operand,
        OptionalView::new(x.as_ref(), lhs.layout),
        OptionalView::new(y.as_ref(), rhs.layout),
        GradientSlot::new(&mut slot, len),
        grad_output,
    )?;
    match slot {
        Some(gradient) => device.try_to_host(&gradient),
        None => Err(nothing_stored(Op::NAME)),
    }
}

fn binary_op<Op: BinaryOp, E: Dtype, D: BinaryKernel<Op, E>>(
    device: &D,
    op: &Op,
    family: &mut Family,
    random: &mut Random,
) -> Result<(), Failure>
where
    Cpu: BinaryKernel<Op, E>,
{
    let cpu = Cpu::default();
    let forward = format!("{} forward", Op::NAME);
    let backward = format!("{} backward", Op::NAME);
    for dims in ELEMENTWISE_DIMS {
        for (lhs_placement, rhs_placement) in PAIRS {
            let lhs = random.tensor::<E>(lhs_placement, dims, Values::Specials);
            let mut rhs = random.tensor::<E>(rhs_placement, dims, Values::Specials);
            add_ties(random, &lhs, &mut rhs);
            let described = format!("{op:?}, lhs {}, rhs {}", lhs.describe(), rhs.describe());
            for unique in [false, true] {
                let case = format!("{described}, lhs {}", if unique { "unique" } else { "shared" });
                family.check(
                    &forward,
                    &case,
                    binary_forward(&cpu, op, &lhs, &rhs, unique),
                    binary_forward(device, op, &lhs, &rhs, unique),
                )?;
            }
            let numel = lhs.layout.num_elements();
            let grad_output = random.values::<E>(numel, Values::Finite);
            for operand in [Operand::Lhs, Operand::Rhs] {
                let len = match operand {
                    Operand::Lhs => lhs.data.len(),
                    Operand::Rhs => rhs.data.len(),
                };
                let existing = random.values::<E>(len, Values::Finite);
                for first in [true, false] {
                    for unique in [false, true] {
                        let case = format!(
                            "{described}, gradient of {operand:?}, {} gradient, output gradient {}",
                            if first { "first (empty slot)" } else { "existing" },
                            if unique { "unique" } else { "shared" }
                        );
                        let existing = (!first).then_some(&existing[..]);
                        family.check(
                            &backward,
                            &case,
                            binary_backward(&cpu, op, operand, &lhs, &rhs, existing, &grad_output, unique),
                            binary_backward(device, op, operand, &lhs, &rhs, existing, &grad_output, unique),
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn binary_refusals<E: Dtype, D: BinaryKernel<Add, E> + BinaryKernel<Mul, E>>(
    device: &D,
    family: &mut Family,
) -> Result<(), Failure>
where
    Cpu: BinaryKernel<Add, E> + BinaryKernel<Mul, E>,
{
    let cpu = Cpu::default();
    let six: Vec<E> = (0..6).map(|i| E::from_f64(i as f64)).collect();
    let fits = Host::contiguous(&[2, 3], six.clone());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..fits.clone()
    };
    let transposed = Host {
        layout: Layout::from_parts(&[3, 2], &[1, 3]),
        placement: "other dims",
        ..fits.clone()
    };
    // Which operand is bad: the one past its end, or both when the dims disagree.
    let bad_operands = [
        (&past, &fits, Some(Operand::Lhs)),
        (&fits, &past, Some(Operand::Rhs)),
        (&fits, &transposed, None),
    ];
    let ones = vec![E::ONE; 6];
    for (lhs, rhs, bad) in bad_operands {
        let case = format!("lhs {}, rhs {}", lhs.describe(), rhs.describe());
        for unique in [false, true] {
            family.refusal(
                "Mul forward",
                &format!("Mul, {case}, lhs unique: {unique}"),
                binary_forward(&cpu, &Mul, lhs, rhs, unique),
                binary_forward(device, &Mul, lhs, rhs, unique),
            )?;
        }
        for operand in [Operand::Lhs, Operand::Rhs] {
            let case = format!("{case}, gradient of {operand:?}");
            // `x · y` reads both operands.
            family.refusal(
                "Mul backward",
                &format!("Mul, {case}"),
                binary_backward(&cpu, &Mul, operand, lhs, rhs, None, &ones, false),
                binary_backward(device, &Mul, operand, lhs, rhs, None, &ones, false),
            )?;
            // `x + y` reads neither, but addresses the gradient through its operand's
            // layout: refused when that layout is the bad one, or the dims disagree.
            if bad.is_none_or(|bad| bad == operand) {
                family.refusal(
                    "Add backward",
                    &format!("Add, {case}"),
                    binary_backward(&cpu, &Add, operand, lhs, rhs, None, &ones, false),
                    binary_backward(device, &Add, operand, lhs, rhs, None, &ones, false),
                )?;
            }
        }
    }
    // A short output gradient.
    let case = format!("Add, both {}, output gradient of 5", fits.describe());
    let five = vec![E::ONE; 5];
    family.refusal(
        "Add backward",
        &case,
        binary_backward(&cpu, &Add, Operand::Rhs, &fits, &fits, None, &five, false),
        binary_backward(device, &Add, Operand::Rhs, &fits, &fits, None, &five, false),
    )?;
    Ok(())
}
