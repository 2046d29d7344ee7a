//! The inputs of the cases: a small seeded generator, the values it draws, and the
//! layouts a tensor is placed in (contiguous, permuted, sliced with an offset,
//! broadcast).

use ferrograd_device::view::describe;
use ferrograd_device::{Dtype, Error, Layout, Storage, Unit};

/// SplitMix64: a few lines, the same numbers on every platform and every version of
/// every crate, which is all the suite asks of a generator.
pub(crate) struct Random {
    state: u64,
}

/// Values a case that checks special values sprinkles among ordinary ones: the
/// infinities, NaN, signed zeros, the bounds of the ops' parameters in the suite
/// (clamp's ±0.5), and values past softplus's threshold and exp's range.
const SPECIALS: [f64; 16] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    10.5,
    25.0,
    -25.0,
    100.0,
    -100.0,
    1e-30,
];

/// A few values that repeat, so maxima and minima tie.
const TIES: [f64; 7] = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0];

/// What a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Values {
    /// Uniform in `[-2, 2)`.
    Finite,
    /// Mostly uniform in `[-3, 3)`, one in six from [`SPECIALS`].
    Specials,
    /// Drawn from [`TIES`].
    Ties,
    /// From [`TIES`], with one in ten NaN and one in ten ±∞.
    TiesNan,
    /// Uniform in `[0.1, 2)`: square averages, sums of squares.
    Positive,
    /// Uniform in `[-0.2, 0.2)`: a running average small beside its square's.
    Small,
}

impl Random {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    pub(crate) fn value<E: Dtype>(&mut self, values: Values) -> E {
        let value = match values {
            Values::Finite => self.uniform(-2.0, 2.0),
            Values::Specials if self.below(6) == 0 => SPECIALS[self.below(SPECIALS.len())],
            Values::Specials => self.uniform(-3.0, 3.0),
            Values::TiesNan if self.below(10) == 0 => f64::NAN,
            Values::TiesNan if self.below(9) == 0 => [f64::INFINITY, f64::NEG_INFINITY][self.below(2)],
            Values::Ties | Values::TiesNan => TIES[self.below(TIES.len())],
            Values::Positive => self.uniform(0.1, 2.0),
            Values::Small => self.uniform(-0.2, 0.2),
        };
        E::from_f64(value)
    }

    pub(crate) fn values<E: Dtype>(&mut self, len: usize, values: Values) -> Vec<E> {
        (0..len).map(|_| self.value(values)).collect()
    }

    pub(crate) fn bools(&mut self, len: usize) -> Vec<bool> {
        (0..len).map(|_| self.below(2) == 0).collect()
    }

    /// A tensor of `dims` placed as `placement` says, its whole buffer (the elements
    /// the layout skips too) filled with `values`.
    pub(crate) fn tensor<E: Dtype>(&mut self, placement: Placement, dims: &[usize], values: Values) -> Host<E> {
        let (layout, len) = placement.place(dims);
        Host {
            data: self.values(len, values),
            layout,
            placement: placement.name,
        }
    }

    /// As [`Random::tensor`], for indices below `bound` (which must be positive).
    pub(crate) fn indices(&mut self, placement: Placement, dims: &[usize], bound: usize) -> Host<usize> {
        let (layout, len) = placement.place(dims);
        Host {
            data: (0..len).map(|_| self.below(bound)).collect(),
            layout,
            placement: placement.name,
        }
    }

    /// As [`Random::tensor`], for a mask.
    pub(crate) fn mask(&mut self, placement: Placement, dims: &[usize]) -> Host<bool> {
        let (layout, len) = placement.place(dims);
        Host {
            data: self.bools(len),
            layout,
            placement: placement.name,
        }
    }
}

/// A tensor on the host: a buffer and the layout a kernel reads it through.
#[derive(Clone, Debug)]
pub(crate) struct Host<T> {
    pub(crate) data: Vec<T>,
    pub(crate) layout: Layout,
    pub(crate) placement: &'static str,
}

impl<T: Unit> Host<T> {
    /// A contiguous tensor of `dims` holding `data`.
    pub(crate) fn contiguous(dims: &[usize], data: Vec<T>) -> Self {
        Self {
            data,
            layout: contiguous(dims),
            placement: "contiguous",
        }
    }

    /// How a failure names it: its placement, layout and buffer length.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} ({}, in a buffer of {})",
            self.placement,
            describe(&self.layout),
            self.data.len()
        )
    }

    /// The buffer on `device`.
    pub(crate) fn upload<D: Storage<T>>(&self, device: &D) -> Result<D::Vec, Error> {
        device.try_from_host(self.data.clone())
    }
}

/// The row-major layout of `dims`.
pub(crate) fn contiguous(dims: &[usize]) -> Layout {
    Layout::from_parts(dims, &row_major(dims))
}

/// Row-major strides of `dims`.
pub(crate) fn row_major(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; dims.len()];
    for axis in (0..dims.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * dims[axis + 1];
    }
    strides
}

/// A buffer copied onto `device`.
pub(crate) fn upload<T: Unit, D: Storage<T>>(device: &D, data: &[T]) -> Result<D::Vec, Error> {
    device.try_from_host(data.to_vec())
}

/// The order in which a placement stores the axes it does not broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Axis 0 outermost.
    RowMajor,
    /// The last axis outermost: the transpose of a row-major tensor.
    Reversed,
    /// For rank 4, `(N, H, W, C)` in memory: what a channels-last image looks like.
    ChannelsLast,
}

/// Which axes a placement reads with stride 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broadcast {
    None,
    /// Axis 0: a bias repeated over rows.
    Leading,
    /// The last axis: each element repeated along a row.
    Trailing,
    /// Axes 1, 3, 5.
    OddAxes,
}

/// How a tensor of given dims sits in its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) name: &'static str,
    order: Order,
    /// Extra elements along each stored axis; the view starts one element in, so the
    /// offset is positive and the view skips elements on both sides.
    pad: usize,
    broadcast: Broadcast,
}

impl Placement {
    /// Row-major, offset 0: every kernel's fast path.
    pub(crate) const CONTIGUOUS: Self = Self::new("contiguous", Order::RowMajor, 0, Broadcast::None);
    /// The transpose of a row-major buffer.
    pub(crate) const PERMUTED: Self = Self::new("permuted", Order::Reversed, 0, Broadcast::None);
    /// A slice of a larger row-major buffer, from a positive offset.
    pub(crate) const SLICED: Self = Self::new("sliced", Order::RowMajor, 2, Broadcast::None);
    /// Axis 0 broadcast.
    pub(crate) const BROADCAST_LEADING: Self = Self::new("broadcast (axis 0)", Order::RowMajor, 0, Broadcast::Leading);
    /// The last axis broadcast.
    pub(crate) const BROADCAST_TRAILING: Self =
        Self::new("broadcast (last axis)", Order::RowMajor, 0, Broadcast::Trailing);
    /// Permuted, sliced and broadcast on the odd axes at once.
    pub(crate) const MIXED: Self = Self::new(
        "permuted, sliced and broadcast (odd axes)",
        Order::Reversed,
        1,
        Broadcast::OddAxes,
    );
    /// Channels last, for rank 4 (row-major otherwise).
    pub(crate) const CHANNELS_LAST: Self = Self::new("channels last", Order::ChannelsLast, 0, Broadcast::None);

    /// Every placement of an input.
    pub(crate) const ALL: [Self; 6] = [
        Self::CONTIGUOUS,
        Self::PERMUTED,
        Self::SLICED,
        Self::BROADCAST_LEADING,
        Self::BROADCAST_TRAILING,
        Self::MIXED,
    ];

    /// The placements of an output that must address each element once.
    pub(crate) const UNIQUE: [Self; 3] = [Self::CONTIGUOUS, Self::PERMUTED, Self::SLICED];

    const fn new(name: &'static str, order: Order, pad: usize, broadcast: Broadcast) -> Self {
        Self {
            name,
            order,
            pad,
            broadcast,
        }
    }

    /// Whether axis `axis` of a rank-`rank` tensor is read with stride 0.
    fn broadcasts(self, axis: usize, rank: usize) -> bool {
        match self.broadcast {
            Broadcast::None => false,
            Broadcast::Leading => axis == 0,
            Broadcast::Trailing => axis + 1 == rank,
            Broadcast::OddAxes => axis % 2 == 1,
        }
    }

    /// The layout of a tensor of `dims` placed so, and the length of its buffer.
    pub(crate) fn place(self, dims: &[usize]) -> (Layout, usize) {
        let rank = dims.len();
        let mut stored: Vec<usize> = (0..rank).filter(|&axis| !self.broadcasts(axis, rank)).collect();
        match self.order {
            Order::RowMajor => {}
            Order::Reversed => stored.reverse(),
            Order::ChannelsLast if stored.len() == 4 => stored = vec![0, 2, 3, 1],
            Order::ChannelsLast => {}
        }
        let padded: Vec<usize> = stored.iter().map(|&axis| dims[axis] + self.pad).collect();
        let steps = row_major(&padded);
        let mut strides = vec![0; rank];
        let mut offset = 0;
        for (position, &axis) in stored.iter().enumerate() {
            strides[axis] = steps[position];
            if self.pad > 0 {
                offset += steps[position];
            }
        }
        let mut len: usize = padded.iter().product();
        if stored.is_empty() && self.pad > 0 {
            // A scalar at an offset.
            offset = self.pad;
            len = self.pad + 1;
        }
        (Layout::from_parts(dims, &strides).with_offset(offset), len)
    }
}

/// Element-wise dims: a scalar, one element, odd lengths around vector widths, an
/// empty axis, size-1 axes, and ranks up to 6.
pub(crate) const ELEMENTWISE_DIMS: &[&[usize]] = &[
    &[],
    &[1],
    &[7],
    &[33],
    &[257],
    &[0],
    &[2, 3],
    &[3, 9],
    &[3, 0, 2],
    &[1, 5, 1],
    &[4, 1, 3, 2],
    &[2, 1, 2, 1, 3, 2],
];

/// Reduction dims: as [`ELEMENTWISE_DIMS`], smaller, since each is reduced over many
/// sets of axes.
pub(crate) const REDUCTION_DIMS: &[&[usize]] = &[
    &[],
    &[1],
    &[7],
    &[33],
    &[0],
    &[2, 3],
    &[3, 0, 2],
    &[1, 5, 1],
    &[4, 1, 3, 2],
    &[2, 1, 2, 1, 3, 2],
];

/// Sets of axes to reduce a rank-`rank` tensor over: every subset up to rank 4, a few
/// beyond.
pub(crate) fn axis_sets(rank: usize) -> Vec<Vec<usize>> {
    if rank <= 4 {
        return (0..1usize << rank)
            .map(|mask| (0..rank).filter(|axis| mask & (1 << axis) != 0).collect())
            .collect();
    }
    let mut sets = vec![vec![], vec![0], vec![rank - 1], vec![1, 3], vec![0, 2, 4]];
    sets.push((0..rank).collect());
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_stay_inside_their_buffers_and_differ() {
        for dims in ELEMENTWISE_DIMS {
            for placement in Placement::ALL.into_iter().chain([Placement::CHANNELS_LAST]) {
                let (layout, len) = placement.place(dims);
                assert_eq!(layout.dims(), *dims);
                assert!(layout.min_buffer_len() <= len, "{placement:?} {dims:?}");
            }
            for placement in Placement::UNIQUE {
                assert!(placement.place(dims).0.has_unique_offsets(), "{placement:?} {dims:?}");
            }
        }
        let (sliced, len) = Placement::SLICED.place(&[2, 3]);
        assert_eq!((sliced.strides(), sliced.offset(), len), (&[5, 1][..], 6, 20));
        let (permuted, _) = Placement::PERMUTED.place(&[2, 3]);
        assert_eq!(permuted.strides(), &[1, 2]);
        let (mixed, len) = Placement::MIXED.place(&[2, 3, 4]);
        // Axes 2 then 0 stored, padded by one: (5, 3); axis 1 broadcast.
        assert_eq!((mixed.strides(), mixed.offset(), len), (&[1, 0, 3][..], 4, 15));
        let (scalar, len) = Placement::SLICED.place(&[]);
        assert_eq!((scalar.offset(), len), (2, 3));
        let (nhwc, _) = Placement::CHANNELS_LAST.place(&[2, 3, 4, 5]);
        assert_eq!(nhwc.strides(), &[60, 1, 15, 3]);
    }

    #[test]
    fn the_generator_is_deterministic() {
        let (mut a, mut b) = (Random::new(3), Random::new(3));
        assert_eq!(a.next_u64(), b.next_u64());
        assert!((0..1000).all(|_| (0.0..1.0).contains(&a.unit())));
    }
}
