//! Tensors whose rank is known only at run time (from a fixture), and macros that
//! apply an op to whichever rank a value holds. Every dim is a run-time `usize`.

use ferrograd_autodiff::prelude::*;
use ferrograd_device::Unit;
use ferrograd_device::prelude::{ArithmeticKernels, Storage};
use ferrograd_testing::TestDevice;

/// The tape of a traced tensor.
pub type Traced<E> = OwnedTape<E, TestDevice>;

/// A tensor of rank 0 to 4 with run-time dims.
pub enum Dyn<E: Unit, T = NoneTape>
where
    TestDevice: Storage<E>,
{
    R0(Tensor<(), E, TestDevice, T>),
    R1(Tensor<(usize,), E, TestDevice, T>),
    R2(Tensor<(usize, usize), E, TestDevice, T>),
    R3(Tensor<(usize, usize, usize), E, TestDevice, T>),
    R4(Tensor<(usize, usize, usize, usize), E, TestDevice, T>),
}

/// Evaluates `$body` with `$t` bound to the tensor `$x` holds, of whatever rank, and
/// wraps the result in the same rank. With two or three values, all must have one
/// rank (else the enclosing function returns an `Err`).
macro_rules! same_rank {
    ($x:expr, |$t:ident| $body:expr) => {
        match $x {
            Dyn::R0($t) => Dyn::R0($body),
            Dyn::R1($t) => Dyn::R1($body),
            Dyn::R2($t) => Dyn::R2($body),
            Dyn::R3($t) => Dyn::R3($body),
            Dyn::R4($t) => Dyn::R4($body),
        }
    };
    ($x:expr, $y:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($x, $y) {
            (Dyn::R0($a), Dyn::R0($b)) => Dyn::R0($body),
            (Dyn::R1($a), Dyn::R1($b)) => Dyn::R1($body),
            (Dyn::R2($a), Dyn::R2($b)) => Dyn::R2($body),
            (Dyn::R3($a), Dyn::R3($b)) => Dyn::R3($body),
            (Dyn::R4($a), Dyn::R4($b)) => Dyn::R4($body),
            (x, y) => return Err(format!("operands of ranks {} and {}", x.rank(), y.rank())),
        }
    };
    ($x:expr, $y:expr, $z:expr, |$a:ident, $b:ident, $c:ident| $body:expr) => {
        match ($x, $y, $z) {
            (Dyn::R0($a), Dyn::R0($b), Dyn::R0($c)) => Dyn::R0($body),
            (Dyn::R1($a), Dyn::R1($b), Dyn::R1($c)) => Dyn::R1($body),
            (Dyn::R2($a), Dyn::R2($b), Dyn::R2($c)) => Dyn::R2($body),
            (Dyn::R3($a), Dyn::R3($b), Dyn::R3($c)) => Dyn::R3($body),
            (Dyn::R4($a), Dyn::R4($b), Dyn::R4($c)) => Dyn::R4($body),
            (x, y, z) => return Err(format!("operands of ranks {}, {} and {}", x.rank(), y.rank(), z.rank())),
        }
    };
}

/// Evaluates `$body` with `$t` bound to the tensor `$x` holds and `$I` a `const usize`
/// item equal to the run-time axis `$axis`, for every axis of ranks 1 to 4 (so `$body`
/// can call `$t.op::<$I>(…)`). `$body` gives the result, a `Dyn` of any rank (`.into()`).
macro_rules! with_axis {
    ($x:expr, $axis:expr, |$t:ident, $I:ident| $body:expr) => {
        match ($x, $axis) {
            (Dyn::R1($t), 0) => {
                const $I: usize = 0;
                $body
            }
            (Dyn::R2($t), 0) => {
                const $I: usize = 0;
                $body
            }
            (Dyn::R2($t), 1) => {
                const $I: usize = 1;
                $body
            }
            (Dyn::R3($t), 0) => {
                const $I: usize = 0;
                $body
            }
            (Dyn::R3($t), 1) => {
                const $I: usize = 1;
                $body
            }
            (Dyn::R3($t), 2) => {
                const $I: usize = 2;
                $body
            }
            (Dyn::R4($t), 0) => {
                const $I: usize = 0;
                $body
            }
            (Dyn::R4($t), 1) => {
                const $I: usize = 1;
                $body
            }
            (Dyn::R4($t), 2) => {
                const $I: usize = 2;
                $body
            }
            (Dyn::R4($t), 3) => {
                const $I: usize = 3;
                $body
            }
            (x, axis) => {
                return Err(format!(
                    "axis {axis} of a rank-{} tensor: no such arm in with_axis!",
                    x.rank()
                ))
            }
        }
    };
}

/// `$x.$method::<_, Axes>($args…)` for the axes listed at run time in `$axes` (a
/// `&[usize]`), dispatched by (rank, axes) to type-level axes: every axis set of
/// ranks 1 to 4. The result's rank is the input's minus the number of axes.
macro_rules! reduce_axes {
    ($x:expr, $axes:expr, $method:ident $(, $arg:expr)*) => {{
        use ferrograd_autodiff::prelude::{Axes2, Axes3, Axes4, Axis};
        match ($x, $axes) {
            (Dyn::R1(t), [0]) => Dyn::R0(t.$method::<_, Axis<0>>($($arg),*)),

            (Dyn::R2(t), [0]) => Dyn::R1(t.$method::<_, Axis<0>>($($arg),*)),
            (Dyn::R2(t), [1]) => Dyn::R1(t.$method::<_, Axis<1>>($($arg),*)),
            (Dyn::R2(t), [0, 1]) => Dyn::R0(t.$method::<_, Axes2<0, 1>>($($arg),*)),

            (Dyn::R3(t), [0]) => Dyn::R2(t.$method::<_, Axis<0>>($($arg),*)),
            (Dyn::R3(t), [1]) => Dyn::R2(t.$method::<_, Axis<1>>($($arg),*)),
            (Dyn::R3(t), [2]) => Dyn::R2(t.$method::<_, Axis<2>>($($arg),*)),
            (Dyn::R3(t), [0, 1]) => Dyn::R1(t.$method::<_, Axes2<0, 1>>($($arg),*)),
            (Dyn::R3(t), [0, 2]) => Dyn::R1(t.$method::<_, Axes2<0, 2>>($($arg),*)),
            (Dyn::R3(t), [1, 2]) => Dyn::R1(t.$method::<_, Axes2<1, 2>>($($arg),*)),
            (Dyn::R3(t), [0, 1, 2]) => Dyn::R0(t.$method::<_, Axes3<0, 1, 2>>($($arg),*)),

            (Dyn::R4(t), [0]) => Dyn::R3(t.$method::<_, Axis<0>>($($arg),*)),
            (Dyn::R4(t), [1]) => Dyn::R3(t.$method::<_, Axis<1>>($($arg),*)),
            (Dyn::R4(t), [2]) => Dyn::R3(t.$method::<_, Axis<2>>($($arg),*)),
            (Dyn::R4(t), [3]) => Dyn::R3(t.$method::<_, Axis<3>>($($arg),*)),
            (Dyn::R4(t), [0, 1]) => Dyn::R2(t.$method::<_, Axes2<0, 1>>($($arg),*)),
            (Dyn::R4(t), [0, 2]) => Dyn::R2(t.$method::<_, Axes2<0, 2>>($($arg),*)),
            (Dyn::R4(t), [0, 3]) => Dyn::R2(t.$method::<_, Axes2<0, 3>>($($arg),*)),
            (Dyn::R4(t), [1, 2]) => Dyn::R2(t.$method::<_, Axes2<1, 2>>($($arg),*)),
            (Dyn::R4(t), [1, 3]) => Dyn::R2(t.$method::<_, Axes2<1, 3>>($($arg),*)),
            (Dyn::R4(t), [2, 3]) => Dyn::R2(t.$method::<_, Axes2<2, 3>>($($arg),*)),
            (Dyn::R4(t), [0, 1, 2]) => Dyn::R1(t.$method::<_, Axes3<0, 1, 2>>($($arg),*)),
            (Dyn::R4(t), [0, 1, 3]) => Dyn::R1(t.$method::<_, Axes3<0, 1, 3>>($($arg),*)),
            (Dyn::R4(t), [0, 2, 3]) => Dyn::R1(t.$method::<_, Axes3<0, 2, 3>>($($arg),*)),
            (Dyn::R4(t), [1, 2, 3]) => Dyn::R1(t.$method::<_, Axes3<1, 2, 3>>($($arg),*)),
            (Dyn::R4(t), [0, 1, 2, 3]) => Dyn::R0(t.$method::<_, Axes4<0, 1, 2, 3>>($($arg),*)),

            (x, axes) => {
                return Err(format!(
                    "{} over axes {:?} of a rank-{} tensor: no such arm in reduce_axes!",
                    stringify!($method),
                    axes,
                    x.rank()
                ));
            }
        }
    }};
}

/// `$x.$method::<Axes>()` for an op that keeps the shape and takes its axes as a type
/// (softmax, log_softmax): every axis set of ranks 1 to 4, from the run-time `$axes`.
macro_rules! normalise_axes {
    ($x:expr, $axes:expr, $method:ident) => {{
        use ferrograd_autodiff::prelude::{Axes2, Axes3, Axes4, Axis};
        match ($x, $axes) {
            (Dyn::R1(t), [0]) => Dyn::R1(t.$method::<Axis<0>>()),

            (Dyn::R2(t), [0]) => Dyn::R2(t.$method::<Axis<0>>()),
            (Dyn::R2(t), [1]) => Dyn::R2(t.$method::<Axis<1>>()),
            (Dyn::R2(t), [0, 1]) => Dyn::R2(t.$method::<Axes2<0, 1>>()),

            (Dyn::R3(t), [0]) => Dyn::R3(t.$method::<Axis<0>>()),
            (Dyn::R3(t), [1]) => Dyn::R3(t.$method::<Axis<1>>()),
            (Dyn::R3(t), [2]) => Dyn::R3(t.$method::<Axis<2>>()),
            (Dyn::R3(t), [0, 1]) => Dyn::R3(t.$method::<Axes2<0, 1>>()),
            (Dyn::R3(t), [0, 2]) => Dyn::R3(t.$method::<Axes2<0, 2>>()),
            (Dyn::R3(t), [1, 2]) => Dyn::R3(t.$method::<Axes2<1, 2>>()),
            (Dyn::R3(t), [0, 1, 2]) => Dyn::R3(t.$method::<Axes3<0, 1, 2>>()),

            (Dyn::R4(t), [0]) => Dyn::R4(t.$method::<Axis<0>>()),
            (Dyn::R4(t), [1]) => Dyn::R4(t.$method::<Axis<1>>()),
            (Dyn::R4(t), [2]) => Dyn::R4(t.$method::<Axis<2>>()),
            (Dyn::R4(t), [3]) => Dyn::R4(t.$method::<Axis<3>>()),
            (Dyn::R4(t), [0, 1]) => Dyn::R4(t.$method::<Axes2<0, 1>>()),
            (Dyn::R4(t), [0, 2]) => Dyn::R4(t.$method::<Axes2<0, 2>>()),
            (Dyn::R4(t), [0, 3]) => Dyn::R4(t.$method::<Axes2<0, 3>>()),
            (Dyn::R4(t), [1, 2]) => Dyn::R4(t.$method::<Axes2<1, 2>>()),
            (Dyn::R4(t), [1, 3]) => Dyn::R4(t.$method::<Axes2<1, 3>>()),
            (Dyn::R4(t), [2, 3]) => Dyn::R4(t.$method::<Axes2<2, 3>>()),
            (Dyn::R4(t), [0, 1, 2]) => Dyn::R4(t.$method::<Axes3<0, 1, 2>>()),
            (Dyn::R4(t), [0, 1, 3]) => Dyn::R4(t.$method::<Axes3<0, 1, 3>>()),
            (Dyn::R4(t), [0, 2, 3]) => Dyn::R4(t.$method::<Axes3<0, 2, 3>>()),
            (Dyn::R4(t), [1, 2, 3]) => Dyn::R4(t.$method::<Axes3<1, 2, 3>>()),
            (Dyn::R4(t), [0, 1, 2, 3]) => Dyn::R4(t.$method::<Axes4<0, 1, 2, 3>>()),

            (x, axes) => {
                return Err(format!(
                    "{} over axes {:?} of a rank-{} tensor: no such arm in normalise_axes!",
                    stringify!($method),
                    axes,
                    x.rank()
                ));
            }
        }
    }};
}

/// `$x.permute::<Axes>()` for the run-time permutation `$axes` of ranks 2 to 4 (and the
/// identity of rank 0 and 1): a non-contiguous view.
macro_rules! permute_axes {
    ($x:expr, $axes:expr) => {{
        use ferrograd_autodiff::prelude::{Axes2, Axes3, Axes4};
        match ($x, $axes) {
            (x @ (Dyn::R0(_) | Dyn::R1(_)), axes) if axes.iter().enumerate().all(|(i, &a)| i == a) => x,
            (Dyn::R2(t), [0, 1]) => Dyn::R2(t.permute::<Axes2<0, 1>>()),
            (Dyn::R2(t), [1, 0]) => Dyn::R2(t.permute::<Axes2<1, 0>>()),

            (Dyn::R3(t), [0, 1, 2]) => Dyn::R3(t.permute::<Axes3<0, 1, 2>>()),
            (Dyn::R3(t), [0, 2, 1]) => Dyn::R3(t.permute::<Axes3<0, 2, 1>>()),
            (Dyn::R3(t), [1, 0, 2]) => Dyn::R3(t.permute::<Axes3<1, 0, 2>>()),
            (Dyn::R3(t), [1, 2, 0]) => Dyn::R3(t.permute::<Axes3<1, 2, 0>>()),
            (Dyn::R3(t), [2, 0, 1]) => Dyn::R3(t.permute::<Axes3<2, 0, 1>>()),
            (Dyn::R3(t), [2, 1, 0]) => Dyn::R3(t.permute::<Axes3<2, 1, 0>>()),

            (Dyn::R4(t), [0, 1, 2, 3]) => Dyn::R4(t.permute::<Axes4<0, 1, 2, 3>>()),
            (Dyn::R4(t), [0, 1, 3, 2]) => Dyn::R4(t.permute::<Axes4<0, 1, 3, 2>>()),
            (Dyn::R4(t), [0, 2, 1, 3]) => Dyn::R4(t.permute::<Axes4<0, 2, 1, 3>>()),
            (Dyn::R4(t), [0, 2, 3, 1]) => Dyn::R4(t.permute::<Axes4<0, 2, 3, 1>>()),
            (Dyn::R4(t), [0, 3, 1, 2]) => Dyn::R4(t.permute::<Axes4<0, 3, 1, 2>>()),
            (Dyn::R4(t), [0, 3, 2, 1]) => Dyn::R4(t.permute::<Axes4<0, 3, 2, 1>>()),
            (Dyn::R4(t), [1, 0, 2, 3]) => Dyn::R4(t.permute::<Axes4<1, 0, 2, 3>>()),
            (Dyn::R4(t), [1, 0, 3, 2]) => Dyn::R4(t.permute::<Axes4<1, 0, 3, 2>>()),
            (Dyn::R4(t), [1, 2, 0, 3]) => Dyn::R4(t.permute::<Axes4<1, 2, 0, 3>>()),
            (Dyn::R4(t), [1, 2, 3, 0]) => Dyn::R4(t.permute::<Axes4<1, 2, 3, 0>>()),
            (Dyn::R4(t), [1, 3, 0, 2]) => Dyn::R4(t.permute::<Axes4<1, 3, 0, 2>>()),
            (Dyn::R4(t), [1, 3, 2, 0]) => Dyn::R4(t.permute::<Axes4<1, 3, 2, 0>>()),
            (Dyn::R4(t), [2, 0, 1, 3]) => Dyn::R4(t.permute::<Axes4<2, 0, 1, 3>>()),
            (Dyn::R4(t), [2, 0, 3, 1]) => Dyn::R4(t.permute::<Axes4<2, 0, 3, 1>>()),
            (Dyn::R4(t), [2, 1, 0, 3]) => Dyn::R4(t.permute::<Axes4<2, 1, 0, 3>>()),
            (Dyn::R4(t), [2, 1, 3, 0]) => Dyn::R4(t.permute::<Axes4<2, 1, 3, 0>>()),
            (Dyn::R4(t), [2, 3, 0, 1]) => Dyn::R4(t.permute::<Axes4<2, 3, 0, 1>>()),
            (Dyn::R4(t), [2, 3, 1, 0]) => Dyn::R4(t.permute::<Axes4<2, 3, 1, 0>>()),
            (Dyn::R4(t), [3, 0, 1, 2]) => Dyn::R4(t.permute::<Axes4<3, 0, 1, 2>>()),
            (Dyn::R4(t), [3, 0, 2, 1]) => Dyn::R4(t.permute::<Axes4<3, 0, 2, 1>>()),
            (Dyn::R4(t), [3, 1, 0, 2]) => Dyn::R4(t.permute::<Axes4<3, 1, 0, 2>>()),
            (Dyn::R4(t), [3, 1, 2, 0]) => Dyn::R4(t.permute::<Axes4<3, 1, 2, 0>>()),
            (Dyn::R4(t), [3, 2, 0, 1]) => Dyn::R4(t.permute::<Axes4<3, 2, 0, 1>>()),
            (Dyn::R4(t), [3, 2, 1, 0]) => Dyn::R4(t.permute::<Axes4<3, 2, 1, 0>>()),

            (x, axes) => {
                return Err(format!(
                    "permute by {:?} of a rank-{} tensor: not a permutation",
                    axes,
                    x.rank()
                ));
            }
        }
    }};
}

/// `$x` broadcast to the run-time dims `$dims` by adding the axes `$axes` (a view with
/// stride 0 along them): every axis set up to rank 4.
macro_rules! broadcast_axes {
    ($x:expr, $axes:expr, $dims:expr) => {{
        use ferrograd_autodiff::prelude::{Axes2, Axes3, Axes4, Axis};
        let d: &[usize] = $dims;
        if d.len() != $x.rank() + $axes.len() {
            return Err(format!(
                "broadcast to {:?} along {:?}: the ranks do not add up",
                d, $axes
            ));
        }
        let err = |e: Error| e.to_string();
        match ($x, $axes) {
            (Dyn::R0(t), [0]) => Dyn::R1(t.try_broadcast_like::<_, Axis<0>>(&(d[0],)).map_err(err)?),

            (Dyn::R1(t), [0]) => Dyn::R2(t.try_broadcast_like::<_, Axis<0>>(&(d[0], d[1])).map_err(err)?),
            (Dyn::R1(t), [1]) => Dyn::R2(t.try_broadcast_like::<_, Axis<1>>(&(d[0], d[1])).map_err(err)?),
            (Dyn::R0(t), [0, 1]) => Dyn::R2(t.try_broadcast_like::<_, Axes2<0, 1>>(&(d[0], d[1])).map_err(err)?),

            (Dyn::R2(t), [0]) => Dyn::R3(t.try_broadcast_like::<_, Axis<0>>(&(d[0], d[1], d[2])).map_err(err)?),
            (Dyn::R2(t), [1]) => Dyn::R3(t.try_broadcast_like::<_, Axis<1>>(&(d[0], d[1], d[2])).map_err(err)?),
            (Dyn::R2(t), [2]) => Dyn::R3(t.try_broadcast_like::<_, Axis<2>>(&(d[0], d[1], d[2])).map_err(err)?),
            (Dyn::R1(t), [0, 1]) => Dyn::R3(
                t.try_broadcast_like::<_, Axes2<0, 1>>(&(d[0], d[1], d[2]))
                    .map_err(err)?,
            ),
            (Dyn::R1(t), [0, 2]) => Dyn::R3(
                t.try_broadcast_like::<_, Axes2<0, 2>>(&(d[0], d[1], d[2]))
                    .map_err(err)?,
            ),
            (Dyn::R1(t), [1, 2]) => Dyn::R3(
                t.try_broadcast_like::<_, Axes2<1, 2>>(&(d[0], d[1], d[2]))
                    .map_err(err)?,
            ),
            (Dyn::R0(t), [0, 1, 2]) => Dyn::R3(
                t.try_broadcast_like::<_, Axes3<0, 1, 2>>(&(d[0], d[1], d[2]))
                    .map_err(err)?,
            ),

            (Dyn::R3(t), [0]) => Dyn::R4(
                t.try_broadcast_like::<_, Axis<0>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R3(t), [1]) => Dyn::R4(
                t.try_broadcast_like::<_, Axis<1>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R3(t), [2]) => Dyn::R4(
                t.try_broadcast_like::<_, Axis<2>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R3(t), [3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axis<3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R2(t), [0, 1]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes2<0, 1>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R2(t), [0, 2]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes2<0, 2>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R2(t), [0, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes2<0, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R2(t), [1, 2]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes2<1, 2>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R2(t), [1, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes2<1, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R2(t), [2, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes2<2, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R1(t), [0, 1, 2]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes3<0, 1, 2>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R1(t), [0, 1, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes3<0, 1, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R1(t), [0, 2, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes3<0, 2, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R1(t), [1, 2, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes3<1, 2, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),
            (Dyn::R0(t), [0, 1, 2, 3]) => Dyn::R4(
                t.try_broadcast_like::<_, Axes4<0, 1, 2, 3>>(&(d[0], d[1], d[2], d[3]))
                    .map_err(err)?,
            ),

            (x, axes) => {
                return Err(format!(
                    "broadcast of a rank-{} tensor along {:?}: no such arm in broadcast_axes!",
                    x.rank(),
                    axes
                ));
            }
        }
    }};
}

/// `$x` reshaped to the run-time dims `$dims` (rank 0 to 4): a view of contiguous
/// data, else a copy.
macro_rules! reshape_to {
    ($x:expr, $dims:expr) => {{
        let d: &[usize] = $dims;
        let err = |e: Error| e.to_string();
        macro_rules! into {
            ($t:expr) => {
                match *d {
                    [] => Dyn::R0($t.try_reshape_like(&()).map_err(err)?),
                    [a] => Dyn::R1($t.try_reshape_like(&(a,)).map_err(err)?),
                    [a, b] => Dyn::R2($t.try_reshape_like(&(a, b)).map_err(err)?),
                    [a, b, c] => Dyn::R3($t.try_reshape_like(&(a, b, c)).map_err(err)?),
                    [a, b, c, e] => Dyn::R4($t.try_reshape_like(&(a, b, c, e)).map_err(err)?),
                    _ => return Err(format!("reshape to {d:?}: the parity tests go to rank 4")),
                }
            };
        }
        match $x {
            Dyn::R0(t) => into!(t),
            Dyn::R1(t) => into!(t),
            Dyn::R2(t) => into!(t),
            Dyn::R3(t) => into!(t),
            Dyn::R4(t) => into!(t),
        }
    }};
}

/// The shapes of `Dyn`'s tensors (every dim a run-time `usize`): a `Dyn` of the rank
/// taken back out as a tensor of that shape.
pub trait DynShape: Shape + Sized {
    fn from_dyn<E: Unit, T>(x: Dyn<E, T>) -> Result<Tensor<Self, E, TestDevice, T>, String>
    where
        TestDevice: Storage<E>;
}

macro_rules! dyn_shape {
    ($variant:ident, $shape:ty) => {
        impl DynShape for $shape {
            fn from_dyn<E: Unit, T>(x: Dyn<E, T>) -> Result<Tensor<Self, E, TestDevice, T>, String>
            where
                TestDevice: Storage<E>,
            {
                match x {
                    Dyn::$variant(t) => Ok(t),
                    x => Err(format!(
                        "a tensor of rank {} where one of rank {} was expected",
                        x.rank(),
                        <$shape as Shape>::NUM_DIMS
                    )),
                }
            }
        }

        impl<E: Unit, T> From<Tensor<$shape, E, TestDevice, T>> for Dyn<E, T>
        where
            TestDevice: Storage<E>,
        {
            fn from(t: Tensor<$shape, E, TestDevice, T>) -> Self {
                Dyn::$variant(t)
            }
        }
    };
}
dyn_shape!(R0, ());
dyn_shape!(R1, (usize,));
dyn_shape!(R2, (usize, usize));
dyn_shape!(R3, (usize, usize, usize));
dyn_shape!(R4, (usize, usize, usize, usize));

/// `x` as a tensor of `like`'s shape type (it must have `like`'s rank): the second
/// operand of an op whose operands share a shape.
pub fn rank_like<S: DynShape, A: Unit, B, E: Unit, T>(
    _like: &Tensor<S, A, TestDevice, B>,
    x: Dyn<E, T>,
) -> Result<Tensor<S, E, TestDevice, T>, String>
where
    TestDevice: Storage<A> + Storage<E>,
{
    S::from_dyn(x)
}

impl<E: Unit, T> Dyn<E, T>
where
    TestDevice: Storage<E>,
{
    pub fn rank(&self) -> usize {
        match self {
            Dyn::R0(_) => 0,
            Dyn::R1(_) => 1,
            Dyn::R2(_) => 2,
            Dyn::R3(_) => 3,
            Dyn::R4(_) => 4,
        }
    }

    pub fn dims(&self) -> Vec<usize> {
        match self {
            Dyn::R0(t) => t.dims().to_vec(),
            Dyn::R1(t) => t.dims().to_vec(),
            Dyn::R2(t) => t.dims().to_vec(),
            Dyn::R3(t) => t.dims().to_vec(),
            Dyn::R4(t) => t.dims().to_vec(),
        }
    }

    /// The elements in row-major order of the logical index (views read through).
    pub fn to_vec(&self) -> Vec<E> {
        match self {
            Dyn::R0(t) => t.as_vec(),
            Dyn::R1(t) => t.as_vec(),
            Dyn::R2(t) => t.as_vec(),
            Dyn::R3(t) => t.as_vec(),
            Dyn::R4(t) => t.as_vec(),
        }
    }
}

impl<E: Unit> Dyn<E>
where
    TestDevice: Storage<E>,
{
    /// A contiguous tensor of `shape` (rank 0 to 4) holding `data` in row-major order.
    pub fn from_vec(dev: &TestDevice, data: Vec<E>, shape: &[usize]) -> Result<Self, String> {
        let err = |e: Error| e.to_string();
        Ok(match *shape {
            [] => Dyn::R0(dev.try_tensor_from_vec(data, ()).map_err(err)?),
            [a] => Dyn::R1(dev.try_tensor_from_vec(data, (a,)).map_err(err)?),
            [a, b] => Dyn::R2(dev.try_tensor_from_vec(data, (a, b)).map_err(err)?),
            [a, b, c] => Dyn::R3(dev.try_tensor_from_vec(data, (a, b, c)).map_err(err)?),
            [a, b, c, d] => Dyn::R4(dev.try_tensor_from_vec(data, (a, b, c, d)).map_err(err)?),
            _ => {
                return Err(format!(
                    "rank {} (shape {shape:?}): the parity tests go to rank 4",
                    shape.len()
                ));
            }
        })
    }
}

impl<E: Dtype> Dyn<E>
where
    TestDevice: ArithmeticKernels<E>,
{
    /// The same tensor, traced on a tape that keeps every gradient.
    pub fn trace(&self) -> Dyn<E, Traced<E>> {
        same_rank!(self, |t| t.leaky_trace())
    }

    /// This tensor's gradient in `grads`, in row-major order.
    pub fn grad(&self, grads: &Gradients<E, TestDevice>) -> Vec<E> {
        match self {
            Dyn::R0(t) => grads.get(t).as_vec(),
            Dyn::R1(t) => grads.get(t).as_vec(),
            Dyn::R2(t) => grads.get(t).as_vec(),
            Dyn::R3(t) => grads.get(t).as_vec(),
            Dyn::R4(t) => grads.get(t).as_vec(),
        }
    }
}
