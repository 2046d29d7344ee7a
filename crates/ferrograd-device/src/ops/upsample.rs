//! 2-d upsampling (PyTorch's `torch.nn.functional.interpolate` of a 4-d input in mode
//! `"nearest"` or `"bilinear"`): the sizes and source positions of one
//! ([`Upsample2dSpec`]), and the kernel trait a device implements
//! ([`Upsample2dKernel`]).
//!
//! Source positions follow PyTorch's CPU kernels exactly, so that the same output pixel
//! reads the same input pixels: nearest takes `min(floor(dst · scale), in - 1)` computed
//! in `f32` (as PyTorch does for every dtype), with `scale = in / out`, or
//! `1 / scale_factor` when a scale factor was given; bilinear takes
//! `src = scale · (dst + 0.5) - 0.5`, clamped to 0 when negative (`align_corners`
//! false), or `src = dst · (in - 1) / (out - 1)` (`align_corners` true), in the tensor's
//! dtype, and blends the two neighbours `floor(src)` and the next (the last pixel
//! repeats at the edge).

use crate::dtype::Dtype;
use crate::error::{Error, format_dims};
use crate::ops::conv::check_operand;
use crate::storage::Storage;
use crate::view::{BufferLength, View, ViewMut};

/// How output pixels are computed from the input's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// The nearest input pixel at or before the source position (PyTorch's `"nearest"`).
    Nearest,
    /// The blend of the four input pixels around the source position (PyTorch's
    /// `"bilinear"`).
    Bilinear {
        /// Whether the corner pixels of input and output are aligned (their centres
        /// coincide), rather than their outer edges.
        align_corners: bool,
    },
}

/// The size of an upsampled image: given (PyTorch's `size`) or by scale factors
/// (PyTorch's `scale_factor`, the output size being `floor(in · factor)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpsampleSize {
    /// `[height, width]` of the output.
    Size([usize; 2]),
    /// `[vertical, horizontal]` scale factors.
    Scale([f64; 2]),
}

impl From<[usize; 2]> for UpsampleSize {
    /// An output of `[height, width]` pixels (PyTorch's `size=(h, w)`).
    fn from(size: [usize; 2]) -> Self {
        UpsampleSize::Size(size)
    }
}

impl From<(usize, usize)> for UpsampleSize {
    /// An output of `(height, width)` pixels (PyTorch's `size=(h, w)`).
    fn from((height, width): (usize, usize)) -> Self {
        UpsampleSize::Size([height, width])
    }
}

impl From<f64> for UpsampleSize {
    /// The same scale factor on both axes (PyTorch's `scale_factor=2.0`).
    fn from(factor: f64) -> Self {
        UpsampleSize::Scale([factor, factor])
    }
}

impl From<[f64; 2]> for UpsampleSize {
    /// `[vertical, horizontal]` scale factors (PyTorch's `scale_factor=(2.0, 1.5)`).
    fn from(factor: [f64; 2]) -> Self {
        UpsampleSize::Scale(factor)
    }
}

/// Everything an upsampling kernel needs, validated: build it with
/// [`Upsample2dSpec::new`]. The input is `(batch, channels, in_height, in_width)`, the
/// output `(batch, channels, out_height, out_width)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Upsample2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels of input and output.
    pub channels: usize,
    /// Rows of the input.
    pub in_height: usize,
    /// Columns of the input.
    pub in_width: usize,
    /// Rows of the output.
    pub out_height: usize,
    /// Columns of the output.
    pub out_width: usize,
    /// How output pixels are computed.
    pub mode: Interpolation,
    /// The scale factors when the size was given by them: PyTorch then maps positions
    /// with `1 / factor` rather than `in / out`.
    pub scale_factor: Option<[f64; 2]>,
}

impl Upsample2dSpec {
    /// Checks an upsampling of an `input` of dims `[batch, channels, height, width]` to
    /// `size` and works out the output's size.
    ///
    /// ```
    /// use ferrograd_device::ops::upsample::{Interpolation, Upsample2dSpec, UpsampleSize};
    /// let spec = Upsample2dSpec::new([1, 3, 5, 4], UpsampleSize::Scale([1.5, 2.0]), Interpolation::Nearest)?;
    /// assert_eq!(spec.output_dims(), [1, 3, 7, 8]);
    /// // Scale 1.5: output row 5 reads input row floor(5 / 1.5) = 3.
    /// assert_eq!(spec.nearest_sources(0), [0, 0, 1, 2, 2, 3, 4]);
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a scale factor that is not finite and positive;
    /// `Error::ShapeMismatch` for an empty input or output. Messages name the sizes.
    pub fn new(input: [usize; 4], size: UpsampleSize, mode: Interpolation) -> Result<Self, Error> {
        let [batch, channels, in_height, in_width] = input;
        let (out, scale_factor) = match size {
            UpsampleSize::Size(size) => (size, None),
            UpsampleSize::Scale(factor) => {
                if factor.iter().any(|f| !f.is_finite() || *f <= 0.0) {
                    return Err(Error::InvalidArgument {
                        op: "upsample2d",
                        message: format!("the scale factors must be finite and positive, got {factor:?}"),
                    });
                }
                // As PyTorch: the product in f64, truncated.
                let out = [
                    (in_height as f64 * factor[0]) as usize,
                    (in_width as f64 * factor[1]) as usize,
                ];
                (out, Some(factor))
            }
        };
        if in_height == 0 || in_width == 0 || out.contains(&0) {
            return Err(Error::ShapeMismatch {
                op: "upsample2d",
                message: format!(
                    "input and output must have pixels: the input {} would give an output of {}",
                    format_dims(&input),
                    format_dims(&out)
                ),
            });
        }
        Ok(Self {
            batch,
            channels,
            in_height,
            in_width,
            out_height: out[0],
            out_width: out[1],
            mode,
            scale_factor,
        })
    }

    /// The input's dims: `[batch, channels, in_height, in_width]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.in_height, self.in_width]
    }

    /// The output's dims: `[batch, channels, out_height, out_width]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_height, self.out_width]
    }

    fn sizes(&self, axis: usize) -> (usize, usize, Option<f64>) {
        match axis {
            0 => (self.in_height, self.out_height, self.scale_factor.map(|f| f[0])),
            _ => (self.in_width, self.out_width, self.scale_factor.map(|f| f[1])),
        }
    }

    /// For each output row (`axis` 0) or column (1), the input row or column that
    /// nearest-neighbour upsampling reads, as PyTorch's `nearest_idx` computes it.
    pub fn nearest_sources(&self, axis: usize) -> Vec<usize> {
        let (input, output, factor) = self.sizes(axis);
        let scale = match factor {
            Some(f) => (1.0 / f) as f32,
            None => input as f32 / output as f32,
        };
        (0..output)
            .map(|dst| {
                if output == input {
                    dst
                } else if output == 2 * input {
                    dst / 2
                } else {
                    ((dst as f32 * scale).floor() as usize).min(input - 1)
                }
            })
            .collect()
    }

    /// For each output row (`axis` 0) or column (1), the two input rows or columns that
    /// bilinear upsampling blends and their weights `(low, high, w_low, w_high)`, as
    /// PyTorch computes them in the dtype `E`.
    pub fn linear_taps<E: Dtype>(&self, axis: usize, align_corners: bool) -> Vec<(usize, usize, E, E)> {
        let (input, output, factor) = self.sizes(axis);
        let as_e = |n: usize| E::from_f64(n as f64);
        let scale = if align_corners {
            if output > 1 {
                as_e(input - 1) / as_e(output - 1)
            } else {
                E::ZERO
            }
        } else {
            match factor {
                Some(f) => E::from_f64(1.0 / f),
                None => as_e(input) / as_e(output),
            }
        };
        let half = E::from_f64(0.5);
        (0..output)
            .map(|dst| {
                let src = if align_corners {
                    scale * as_e(dst)
                } else {
                    let src = scale * (as_e(dst) + half) - half;
                    if src < E::ZERO { E::ZERO } else { src }
                };
                let low = (src.to_f64().floor() as usize).min(input - 1);
                let mut w_high = src - as_e(low);
                if w_high < E::ZERO {
                    w_high = E::ZERO;
                }
                if w_high > E::ONE {
                    w_high = E::ONE;
                }
                let high = if low < input - 1 { low + 1 } else { low };
                (low, high, E::ONE - w_high, w_high)
            })
            .collect()
    }

    /// Checks that the spec is one [`Upsample2dSpec::new`] gives (its fields are
    /// public, so a caller may have built or changed it by hand), so every source
    /// position a kernel computes lies inside the input. O(1).
    ///
    /// # Errors
    /// The error `new` gives for these sizes, or `Error::InvalidArgument` naming the
    /// output size they give.
    pub fn check(&self) -> Result<(), Error> {
        let size = match self.scale_factor {
            Some(factor) => UpsampleSize::Scale(factor),
            None => UpsampleSize::Size([self.out_height, self.out_width]),
        };
        let rebuilt = Self::new(self.input_dims(), size, self.mode)?;
        if rebuilt == *self {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op: "upsample2d",
            message: format!(
                "the spec's output {} does not follow from its input {} and scale factors {:?} \
                 (which give {}); build it with Upsample2dSpec::new",
                format_dims(&self.output_dims()),
                format_dims(&self.input_dims()),
                self.scale_factor,
                format_dims(&rebuilt.output_dims())
            ),
        })
    }

    /// Checks that `operand` has dims `expected` and stays inside its buffer: what a
    /// kernel checks at entry for each operand. O(rank).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` naming the operand and both shapes;
    /// `Error::InvalidArgument` naming the operand, its layout and its buffer's length.
    pub fn check_operand<V: BufferLength>(
        &self,
        name: &str,
        operand: &View<'_, V>,
        expected: &[usize],
    ) -> Result<(), Error> {
        check_operand("upsample2d", name, operand, expected)
    }
}

/// Runs 2-d upsampling and its gradient on a device.
///
/// The input is a view with a rank-4 [`Layout`](crate::Layout) of any strides; its
/// gradient is added (`+=`) through that layout, which may repeat elements (a
/// broadcast input's): every position then adds to its element. Each kernel checks,
/// before it reads anything, that the spec is consistent ([`Upsample2dSpec::check`]),
/// that the view has the spec's input dims and stays inside its buffer, and that the
/// output's gradient has the output's length.
pub trait Upsample2dKernel<E: Dtype>: Storage<E> {
    /// The upsampled image: a new contiguous buffer of [`Upsample2dSpec::output_dims`].
    fn upsample2d_forward(&self, spec: &Upsample2dSpec, input: View<'_, Self::Vec>) -> Result<Self::Vec, Error>;

    /// Adds the gradient of the input, from the output's (contiguous), into
    /// `grad_input` (through the input's layout).
    fn upsample2d_backward(
        &self,
        spec: &Upsample2dSpec,
        grad_output: &Self::Vec,
        grad_input: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Source positions worked out by hand from PyTorch's formulas.
    #[test]
    fn sources_follow_pytorch() {
        let bilinear = |align_corners| Interpolation::Bilinear { align_corners };
        // 2 → 4 without aligned corners: src = (dst + 0.5) / 2 - 0.5 = -0.25 (→ 0), 0.25, 0.75, 1.25.
        let s = Upsample2dSpec::new([1, 1, 2, 3], UpsampleSize::Size([4, 3]), bilinear(false)).unwrap();
        assert_eq!(
            s.linear_taps::<f64>(0, false),
            [
                (0, 1, 1.0, 0.0),
                (0, 1, 0.75, 0.25),
                (0, 1, 0.25, 0.75),
                (1, 1, 0.75, 0.25)
            ]
        );
        // Aligned corners: src = dst · (2 - 1) / (4 - 1).
        let taps = s.linear_taps::<f64>(0, true);
        assert_eq!(taps[0], (0, 1, 1.0, 0.0));
        assert!((taps[1].3 - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(taps[3], (1, 1, 1.0, 0.0));
        // Nearest 3 → 5: floor(dst · 0.6) = 0, 0, 1, 1, 2; 3 → 6 is dst / 2.
        let s = Upsample2dSpec::new([1, 1, 3, 3], UpsampleSize::Size([5, 6]), Interpolation::Nearest).unwrap();
        assert_eq!(s.nearest_sources(0), [0, 0, 1, 1, 2]);
        assert_eq!(s.nearest_sources(1), [0, 0, 1, 1, 2, 2]);
        // Down: 5 → 2 reads floor(dst · 2.5) = 0, 2.
        let s = Upsample2dSpec::new([1, 1, 5, 5], UpsampleSize::Size([2, 5]), Interpolation::Nearest).unwrap();
        assert_eq!(s.nearest_sources(0), [0, 2]);
    }

    #[test]
    fn errors_name_the_sizes() {
        let e = Upsample2dSpec::new([1, 2, 3, 3], UpsampleSize::Scale([0.2, 1.0]), Interpolation::Nearest).unwrap_err();
        assert_eq!(
            e.to_string(),
            "upsample2d: input and output must have pixels: the input (1, 2, 3, 3) would give an output of (0, 3)"
        );
        let e =
            Upsample2dSpec::new([1, 2, 3, 3], UpsampleSize::Scale([-1.0, 1.0]), Interpolation::Nearest).unwrap_err();
        assert_eq!(
            e.to_string(),
            "upsample2d: the scale factors must be finite and positive, got [-1.0, 1.0]"
        );
    }
}
