//! What a kernel receives: a buffer together with the layout it is read or written
//! through, and the checks every kernel runs on them before touching memory.
//!
//! A kernel trusts nothing about its arguments. At its entry it calls
//! [`View::check`] on every view it reads and [`ViewMut::check`] on every view it
//! writes (which also refuses a layout that writes one element twice, where the kernel
//! forbids it), then [`check_same_dims`] or [`check_dims`] where dims must agree. A bad
//! layout is then an [`Error::InvalidArgument`] naming the kernel, the argument and the
//! sizes, never an index panic on the CPU or an illegal memory access on a GPU.
//!
//! ```
//! use ferrograd_device::{BufferLength, Layout, View};
//!
//! // A 6-element buffer read as (2, 3) from element 4 reaches past its end.
//! let buffer = vec![0.0f32; 6];
//! let view = View::new(&buffer, Layout::from_parts(&[2, 3], &[3, 1]).with_offset(4));
//! let error = view.check("copy_strided", "src").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "copy_strided: src reaches element 9 of a buffer of 6 elements \
//!      (dims (2, 3), strides (3, 1), offset 4)"
//! );
//! ```

use crate::error::{Error, format_dims};
use ferrograd_shapes::Layout;
// For the batched-matrix checks at the end of the file.
use crate::ops::matmul::MatrixLayout;

/// The number of elements a device buffer holds, known on the host (a GPU buffer
/// records its length), so views can be checked before a kernel launches.
pub trait BufferLength {
    /// The number of elements.
    fn buffer_length(&self) -> usize;
}

impl<E> BufferLength for Vec<E> {
    fn buffer_length(&self) -> usize {
        self.len()
    }
}

/// A buffer read through a layout: one input of a kernel.
///
/// `L` is [`Layout`] for element-wise addressing, or another layout type where a kernel
/// addresses its input differently (matrices, for batched products).
#[derive(Debug)]
pub struct View<'a, V, L = Layout> {
    /// The buffer.
    pub buffer: &'a V,
    /// How the kernel addresses it.
    pub layout: L,
}

// Derived `Clone` would require `V: Clone`; a view only copies a reference.
impl<V, L: Copy> Clone for View<'_, V, L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V, L: Copy> Copy for View<'_, V, L> {}

impl<'a, V, L> View<'a, V, L> {
    /// `buffer` read through `layout`.
    #[inline]
    pub fn new(buffer: &'a V, layout: L) -> Self {
        Self { buffer, layout }
    }
}

/// A buffer written through a layout: the output of a kernel that writes into memory
/// the caller owns.
#[derive(Debug)]
pub struct ViewMut<'a, V, L = Layout> {
    /// The buffer.
    pub buffer: &'a mut V,
    /// How the kernel addresses it.
    pub layout: L,
}

impl<'a, V, L> ViewMut<'a, V, L> {
    /// `buffer` written through `layout`.
    #[inline]
    pub fn new(buffer: &'a mut V, layout: L) -> Self {
        Self { buffer, layout }
    }
}

impl<V: BufferLength> View<'_, V> {
    /// `Ok` when every element the layout addresses lies inside the buffer; else an
    /// error naming `kernel`, the argument `role` and the sizes.
    #[inline]
    pub fn check(&self, kernel: &'static str, role: &str) -> Result<(), Error> {
        check_reach(kernel, role, &self.layout, self.buffer.buffer_length())
    }
}

impl<V: BufferLength> ViewMut<'_, V> {
    /// `Ok` when every element the layout addresses lies inside the buffer and no two
    /// positions of the layout share an element (a kernel writing in parallel would
    /// race on it, and one accumulating would count it twice); else an error naming
    /// `kernel`, the argument `role` and the sizes.
    #[inline]
    pub fn check(&self, kernel: &'static str, role: &str) -> Result<(), Error> {
        check_reach(kernel, role, &self.layout, self.buffer.buffer_length())?;
        check_unique_offsets(kernel, role, &self.layout)
    }

    /// As [`ViewMut::check`], for a kernel that documents that repeated elements
    /// accumulate (each position adds once): only the reach is checked.
    #[inline]
    pub fn check_accumulating(&self, kernel: &'static str, role: &str) -> Result<(), Error> {
        check_reach(kernel, role, &self.layout, self.buffer.buffer_length())
    }

    /// The same buffer, read.
    #[inline]
    pub fn as_view(&self) -> View<'_, V> {
        View::new(self.buffer, self.layout)
    }
}

/// `Ok` when `layout` stays inside a buffer of `buffer_length` elements.
#[inline]
pub fn check_reach(kernel: &'static str, role: &str, layout: &Layout, buffer_length: usize) -> Result<(), Error> {
    let needed = layout.min_buffer_len();
    if needed <= buffer_length {
        return Ok(());
    }
    reach_error(kernel, role, layout, buffer_length, needed)
}

// Out of line: every kernel call runs the check, almost none the message.
#[cold]
#[inline(never)]
fn reach_error(
    kernel: &'static str,
    role: &str,
    layout: &Layout,
    buffer_length: usize,
    needed: usize,
) -> Result<(), Error> {
    Err(Error::InvalidArgument {
        op: kernel,
        message: format!(
            "{role} reaches element {} of a buffer of {buffer_length} elements ({})",
            needed - 1,
            describe(layout)
        ),
    })
}

/// `Ok` when no two positions of `layout` address the same element.
#[inline]
pub fn check_unique_offsets(kernel: &'static str, role: &str, layout: &Layout) -> Result<(), Error> {
    if layout.has_unique_offsets() {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        op: kernel,
        message: format!(
            "{role} is written through a layout that addresses some elements more than once ({}); \
             write into a contiguous buffer",
            describe(layout)
        ),
    })
}

/// `Ok` when the two layouts have the same dims; else an error naming both.
#[inline]
pub fn check_same_dims(
    kernel: &'static str,
    (role_a, a): (&str, &Layout),
    (role_b, b): (&str, &Layout),
) -> Result<(), Error> {
    if a.dims() == b.dims() {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op: kernel,
        message: format!(
            "{role_a} has dims {} but {role_b} has dims {}; they must be equal",
            format_dims(a.dims()),
            format_dims(b.dims())
        ),
    })
}

/// `Ok` when `layout` has exactly the dims `expected`; else an error naming both.
#[inline]
pub fn check_dims(kernel: &'static str, role: &str, layout: &Layout, expected: &[usize]) -> Result<(), Error> {
    if layout.dims() == expected {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op: kernel,
        message: format!(
            "{role} has dims {}, expected {}",
            format_dims(layout.dims()),
            format_dims(expected)
        ),
    })
}

/// A layout as an error message shows it.
pub fn describe(layout: &Layout) -> String {
    format!(
        "dims {}, strides {}, offset {}",
        format_dims(layout.dims()),
        format_dims(layout.strides()),
        layout.offset()
    )
}

// ---------------------------------------------------------------------------------
// Inputs a kernel may take over or not read, gradients it may allocate, and the sizes
// of contiguous buffers and axis lists (element-wise ops, reductions, softmax, indexing)
// ---------------------------------------------------------------------------------

/// An input buffer, shared or handed over ([`Input`](crate::Input)), read through a
/// layout: the input of a kernel that may write its result over a `Unique`, dense
/// input instead of allocating.
#[derive(Debug)]
pub struct InputView<'a, V, L = Layout> {
    /// The buffer.
    pub buffer: crate::storage::Input<'a, V>,
    /// How the kernel addresses it.
    pub layout: L,
}

impl<'a, V, L> InputView<'a, V, L> {
    /// `buffer` read through `layout`.
    #[inline]
    pub fn new(buffer: crate::storage::Input<'a, V>, layout: L) -> Self {
        Self { buffer, layout }
    }
}

impl<V: BufferLength> InputView<'_, V> {
    /// As [`View::check`].
    #[inline]
    pub fn check(&self, kernel: &'static str, role: &str) -> Result<(), Error> {
        check_reach(kernel, role, &self.layout, self.buffer.get().buffer_length())
    }
}

/// An input whose layout a kernel always needs (it addresses the input's gradient too)
/// but whose values it reads only for some ops: the buffer is `None` where the caller
/// kept nothing because the op's derivative does not read it.
#[derive(Debug)]
pub struct OptionalView<'a, V, L = Layout> {
    /// The buffer, where the caller kept it.
    pub buffer: Option<&'a V>,
    /// How the kernel addresses the input (and its gradient).
    pub layout: L,
}

// As for `View`: a view only copies a reference.
impl<V, L: Copy> Clone for OptionalView<'_, V, L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V, L: Copy> Copy for OptionalView<'_, V, L> {}

impl<'a, V, L> OptionalView<'a, V, L> {
    /// `buffer` (if kept) read through `layout`.
    #[inline]
    pub fn new(buffer: Option<&'a V>, layout: L) -> Self {
        Self { buffer, layout }
    }
}

impl<V: BufferLength> OptionalView<'_, V> {
    /// As [`View::check`] when the buffer is there; a missing buffer is the kernel's to
    /// refuse, where it needs the values.
    #[inline]
    pub fn check(&self, kernel: &'static str, role: &str) -> Result<(), Error> {
        match self.buffer {
            Some(buffer) => check_reach(kernel, role, &self.layout, buffer.buffer_length()),
            None => Ok(()),
        }
    }
}

/// The gradient buffer of an input, which the first contribution creates: `None` until
/// then, when the kernel stores a new buffer of `len` elements (or reuses the output's
/// gradient); afterwards the kernel adds into it.
#[derive(Debug)]
pub struct GradientSlot<'a, V> {
    /// The gradient, once some contribution has created it.
    pub buffer: &'a mut Option<V>,
    /// The number of elements the gradient has, or will have: the input buffer's.
    pub len: usize,
}

impl<'a, V> GradientSlot<'a, V> {
    /// The gradient in `buffer`, of `len` elements.
    #[inline]
    pub fn new(buffer: &'a mut Option<V>, len: usize) -> Self {
        Self { buffer, len }
    }
}

impl<V: BufferLength> GradientSlot<'_, V> {
    /// `Ok` when `layout`, through which the kernel addresses the gradient, stays inside
    /// `len` elements and inside the buffer already there. Repeated elements are not
    /// refused: a gradient accumulates every position that reads an element.
    #[inline]
    pub fn check(&self, kernel: &'static str, role: &str, layout: &Layout) -> Result<(), Error> {
        check_reach(kernel, role, layout, self.len)?;
        match &*self.buffer {
            Some(buffer) => check_reach(kernel, role, layout, buffer.buffer_length()),
            None => Ok(()),
        }
    }
}

/// `Ok` when a contiguous buffer of `buffer_length` elements holds the `needed` a
/// kernel reads or writes in order (an output, or the gradient of one).
#[inline]
pub fn check_len(kernel: &'static str, role: &str, buffer_length: usize, needed: usize) -> Result<(), Error> {
    if needed <= buffer_length {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        op: kernel,
        message: format!("{role} has {buffer_length} elements, fewer than the {needed} it must hold"),
    })
}

/// `Ok` when `axes` are axes of a rank-`rank` tensor, sorted and distinct, as every
/// kernel taking a list of axes requires (a repeated axis would count its elements
/// twice, and reach past the input).
#[inline]
pub fn check_axes(kernel: &'static str, axes: &[usize], rank: usize) -> Result<(), Error> {
    let in_range = axes.iter().all(|&axis| axis < rank);
    let sorted = axes.windows(2).all(|pair| pair[0] < pair[1]);
    if in_range && sorted {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        op: kernel,
        message: format!("axes {axes:?} of a rank-{rank} tensor; they must be below {rank}, sorted and distinct"),
    })
}

// ---- Batched matrices ----
//
// A view whose layout is a `MatrixLayout` (the operands of a batched product) is
// checked as the layout of all its elements: the batch axes, then the rows and columns
// of one matrix, whose sizes the kernel knows.

impl<V: BufferLength> View<'_, V, MatrixLayout> {
    /// As [`View::check`], for a batch of `rows × columns` matrices.
    #[inline]
    pub fn check_matrices(
        &self,
        kernel: &'static str,
        role: &str,
        (rows, columns): (usize, usize),
    ) -> Result<(), Error> {
        let elements = matrix_elements(kernel, role, &self.layout, rows, columns)?;
        check_reach(kernel, role, &elements, self.buffer.buffer_length())
    }
}

impl<V: BufferLength> ViewMut<'_, V, MatrixLayout> {
    /// As [`ViewMut::check`], for a batch of `rows × columns` matrices: a matrix
    /// repeated across the batch (stride 0) or an element repeated within one is an
    /// error.
    #[inline]
    pub fn check_matrices(
        &self,
        kernel: &'static str,
        role: &str,
        (rows, columns): (usize, usize),
    ) -> Result<(), Error> {
        let elements = matrix_elements(kernel, role, &self.layout, rows, columns)?;
        check_reach(kernel, role, &elements, self.buffer.buffer_length())?;
        check_unique_offsets(kernel, role, &elements)
    }
}

/// The element layout of a batch of `rows × columns` matrices, or an error when the
/// batch has too many axes to make one.
fn matrix_elements(
    kernel: &'static str,
    role: &str,
    layout: &MatrixLayout,
    rows: usize,
    columns: usize,
) -> Result<Layout, Error> {
    layout.elements(rows, columns).ok_or_else(|| Error::InvalidArgument {
        op: kernel,
        message: format!(
            "{role} has {} batch axes; a batch of matrices has at most {}",
            layout.batch.rank(),
            ferrograd_shapes::MAX_RANK - 2
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_and_repeats_are_errors_naming_the_kernel() {
        let buffer = vec![0.0f64; 6];
        let fits = View::new(&buffer, Layout::from_parts(&[2, 3], &[3, 1]));
        assert!(fits.check("k", "input").is_ok());
        let broadcast = View::new(&buffer, Layout::from_parts(&[4, 6], &[0, 1]));
        assert!(broadcast.check("k", "input").is_ok());
        let past = View::new(&buffer, Layout::from_parts(&[2, 4], &[3, 1]));
        let message = past.check("gather", "input").unwrap_err().to_string();
        assert!(
            message.starts_with("gather: input reaches element 6 of a buffer of 6"),
            "{message}"
        );

        let mut out = vec![0.0f64; 6];
        let repeated = ViewMut::new(&mut out, Layout::from_parts(&[4, 6], &[0, 1]));
        assert!(repeated.check_accumulating("k", "grad").is_ok());
        let message = repeated.check("add_strided", "dst").unwrap_err().to_string();
        assert!(message.contains("more than once"), "{message}");
        assert!(
            ViewMut::new(&mut out, Layout::from_parts(&[3, 2], &[1, 3]))
                .check("k", "out")
                .is_ok()
        );

        let empty: Vec<f32> = Vec::new();
        assert!(
            View::new(&empty, Layout::from_parts(&[0, 3], &[3, 1]).with_offset(9))
                .check("k", "x")
                .is_ok()
        );
    }

    #[test]
    fn dims_must_agree() {
        let a = Layout::from_parts(&[2, 3], &[3, 1]);
        let b = Layout::from_parts(&[3, 2], &[2, 1]);
        assert!(check_same_dims("add", ("lhs", &a), ("rhs", &a)).is_ok());
        assert_eq!(
            check_same_dims("add", ("lhs", &a), ("rhs", &b))
                .unwrap_err()
                .to_string(),
            "add: lhs has dims (2, 3) but rhs has dims (3, 2); they must be equal"
        );
        assert_eq!(
            check_dims("one_hot", "out", &a, &[2, 4]).unwrap_err().to_string(),
            "one_hot: out has dims (2, 3), expected (2, 4)"
        );
    }
}
