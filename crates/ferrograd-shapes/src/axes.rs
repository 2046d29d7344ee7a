/// A set of axes of a shape, given as types so the compiler can check them.
pub trait Axes: 'static + Copy + Default + Send + Sync {
    /// The axes, in increasing order for reductions; in the order given for permutations.
    const AXES: &'static [usize];
}

/// A single axis, for the ops that work along one axis only (PyTorch's `dim=I`), such
/// as `max_with_indices`: naming two or more axes there does not compile.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a single axis",
    label = "this op works along one axis only",
    note = "name one axis, `Axis<I>`, or a target shape that has exactly one axis fewer"
)]
pub trait SingleAxis: Axes {
    /// The axis.
    const AXIS: usize;
}

/// The axis `I`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axis<const I: usize>;
/// The axes `I` and `J`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axes2<const I: usize, const J: usize>;
/// Three axes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axes3<const I: usize, const J: usize, const K: usize>;
/// Four axes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axes4<const I: usize, const J: usize, const K: usize, const L: usize>;
/// Five axes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axes5<const I: usize, const J: usize, const K: usize, const L: usize, const M: usize>;
/// Six axes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axes6<const I: usize, const J: usize, const K: usize, const L: usize, const M: usize, const N: usize>;

impl<const I: usize> Axes for Axis<I> {
    const AXES: &'static [usize] = &[I];
}
impl<const I: usize> SingleAxis for Axis<I> {
    const AXIS: usize = I;
}
impl<const I: usize, const J: usize> Axes for Axes2<I, J> {
    const AXES: &'static [usize] = &[I, J];
}
impl<const I: usize, const J: usize, const K: usize> Axes for Axes3<I, J, K> {
    const AXES: &'static [usize] = &[I, J, K];
}
impl<const I: usize, const J: usize, const K: usize, const L: usize> Axes for Axes4<I, J, K, L> {
    const AXES: &'static [usize] = &[I, J, K, L];
}
impl<const I: usize, const J: usize, const K: usize, const L: usize, const M: usize> Axes for Axes5<I, J, K, L, M> {
    const AXES: &'static [usize] = &[I, J, K, L, M];
}
impl<const I: usize, const J: usize, const K: usize, const L: usize, const M: usize, const N: usize> Axes
    for Axes6<I, J, K, L, M, N>
{
    const AXES: &'static [usize] = &[I, J, K, L, M, N];
}
