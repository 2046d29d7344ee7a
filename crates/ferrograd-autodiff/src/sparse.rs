//! Row-sparse gradients: the rows of a table that a step touched, and nothing else.
//!
//! An embedding looks up a few rows of a large table, so its gradient is zero outside
//! those rows. PyTorch's `nn.Embedding(sparse=True)` gives a sparse COO gradient for it;
//! [`SparseGrad`] is the same thing kept coalesced (sorted row indices, each once, with
//! the rows that repeat summed), which is what every optimizer wants anyway: SGD
//! touches the rows, Adagrad and SparseAdam need each row once because their updates
//! are not linear in the gradient.

use ferrograd_device::{Dtype, Error, Storage, Unit};
use std::fmt;

/// The gradient of a `(num_rows, …)` tensor that is zero outside a few rows: the row
/// indices, sorted and each once, and the rows (`row_len` elements each, one after
/// another, in the order of the indices). A row that several lookups touched holds the
/// sum of their gradients.
///
/// [`Gradients`](crate::Gradients) holds one for a parameter whose gradient is sparse
/// (an `Embedding` built with `sparse(true)`); read it with
/// [`Gradients::sparse_grad`](crate::Gradients::sparse_grad).
///
/// ```
/// use ferrograd_autodiff::SparseGrad;
/// use ferrograd_cpu::Cpu;
///
/// let dev = Cpu::default();
/// // Rows 3, 0 and 3 again of a 5 × 2 table: row 3's two contributions add up.
/// let grad = SparseGrad::try_from_rows(&dev, 5, 2, &[3, 0, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// assert_eq!(grad.indices(), &[0, 3]);
/// assert_eq!(&grad.values()[..], &[3.0, 4.0, 6.0, 8.0]);
/// assert_eq!(&grad.try_to_dense(&dev)?[..], &[3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 6.0, 8.0, 0.0, 0.0]);
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
pub struct SparseGrad<E: Unit, D: Storage<E>> {
    num_rows: usize,
    row_len: usize,
    /// Sorted, each once.
    indices: Vec<usize>,
    /// `indices.len() × row_len`, row-major.
    values: D::Vec,
}

impl<E: Unit, D: Storage<E>> Clone for SparseGrad<E, D> {
    fn clone(&self) -> Self {
        Self {
            num_rows: self.num_rows,
            row_len: self.row_len,
            indices: self.indices.clone(),
            values: self.values.clone(),
        }
    }
}

impl<E: Unit, D: Storage<E>> fmt::Debug for SparseGrad<E, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseGrad")
            .field("num_rows", &self.num_rows)
            .field("row_len", &self.row_len)
            .field("indices", &self.indices)
            .finish_non_exhaustive()
    }
}

impl<E: Unit, D: Storage<E>> SparseGrad<E, D> {
    /// The gradient of a `num_rows × row_len` table that no row has reached yet.
    pub fn empty(num_rows: usize, row_len: usize) -> Self {
        Self {
            num_rows,
            row_len,
            indices: Vec::new(),
            values: D::Vec::default(),
        }
    }

    /// The number of rows of the table (of the dense gradient).
    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    /// The number of elements of one row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// The rows held, sorted, each once.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The rows' values: `indices().len() × row_len()` elements, row-major.
    pub fn values(&self) -> &D::Vec {
        &self.values
    }

    /// The rows' values, to change in place (to clip or scale them).
    pub fn values_mut(&mut self) -> &mut D::Vec {
        &mut self.values
    }

    /// The number of rows held (PyTorch's `nnz` of a coalesced gradient).
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Whether no row is held: the gradient is zero.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The bytes this gradient holds: its indices and its rows. What a sparse step
    /// costs in memory, beside `num_rows · row_len` elements for a dense one.
    pub fn num_bytes(&self) -> usize {
        self.indices.len() * std::mem::size_of::<usize>() + D::len(&self.values) * std::mem::size_of::<E>()
    }

    /// Forgets every row (the gradient becomes zero), keeping the table's size.
    pub fn clear(&mut self) {
        self.indices.clear();
        self.values = D::Vec::default();
    }

    /// The dense gradient: `num_rows · row_len` elements, zero outside the rows held.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the dense buffer cannot be allocated.
    pub fn try_to_dense(&self, device: &D) -> Result<D::Vec, Error> {
        let len = self.dense_len()?;
        let mut dense = Vec::new();
        dense.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
            elements: len,
            dtype: E::NAME,
        })?;
        dense.resize(len, E::default());
        let values = device.try_to_host(&self.values)?;
        for (row, &index) in values.chunks_exact(self.row_len.max(1)).zip(&self.indices) {
            dense[index * self.row_len..(index + 1) * self.row_len].copy_from_slice(row);
        }
        device.try_from_host(dense)
    }

    fn dense_len(&self) -> Result<usize, Error> {
        self.num_rows
            .checked_mul(self.row_len)
            .ok_or_else(|| Error::InvalidArgument {
                op: "SparseGrad",
                message: format!(
                    "a table of {} rows of {} elements is too large to make dense",
                    self.num_rows, self.row_len
                ),
            })
    }
}

impl<E: Dtype, D: Storage<E>> SparseGrad<E, D> {
    /// The gradient of a `num_rows × row_len` table made of `indices.len()` rows:
    /// `rows[k * row_len..(k + 1) * row_len]` belongs to row `indices[k]`. Indices may
    /// repeat, in any order; repeated rows are summed (PyTorch's `coalesce`).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `rows` is not `indices.len() × row_len` elements;
    /// [`Error::InvalidArgument`] naming the first index that is not below `num_rows`.
    pub fn try_from_rows(
        device: &D,
        num_rows: usize,
        row_len: usize,
        indices: &[usize],
        rows: &[E],
    ) -> Result<Self, Error> {
        if indices.len().checked_mul(row_len) != Some(rows.len()) {
            return Err(Error::ShapeMismatch {
                op: "SparseGrad",
                message: format!(
                    "{} indices of rows of {row_len} elements need {} values, got {}",
                    indices.len(),
                    indices.len().saturating_mul(row_len),
                    rows.len()
                ),
            });
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= num_rows) {
            return Err(Error::InvalidArgument {
                op: "SparseGrad",
                message: format!("row index {bad} is out of bounds for a table of {num_rows} rows"),
            });
        }
        let (indices, values) = coalesce(num_rows, indices, rows, row_len);
        Ok(Self {
            num_rows,
            row_len,
            indices,
            values: device.try_from_host(values)?,
        })
    }

    /// Adds `other` into this gradient: rows held by both are summed, the others
    /// joined (what accumulating two backward passes does).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the two are gradients of tables of different sizes.
    pub fn try_add(&mut self, other: &Self, device: &D) -> Result<(), Error> {
        self.check_same_table(other)?;
        if other.is_empty() {
            return Ok(());
        }
        if self.is_empty() {
            self.indices.clone_from(&other.indices);
            self.values = other.values.clone();
            return Ok(());
        }
        let (ours, theirs) = (device.try_to_host(&self.values)?, device.try_to_host(&other.values)?);
        let w = self.row_len;
        let mut indices = Vec::with_capacity(self.indices.len() + other.indices.len());
        let mut values = Vec::with_capacity(ours.len() + theirs.len());
        let (mut i, mut j) = (0, 0);
        // Both lists are sorted and unique: one merge keeps the result so.
        while i < self.indices.len() || j < other.indices.len() {
            let a = self.indices.get(i).copied().unwrap_or(usize::MAX);
            let b = other.indices.get(j).copied().unwrap_or(usize::MAX);
            if a < b {
                indices.push(a);
                values.extend_from_slice(&ours[i * w..(i + 1) * w]);
                i += 1;
            } else if b < a {
                indices.push(b);
                values.extend_from_slice(&theirs[j * w..(j + 1) * w]);
                j += 1;
            } else {
                indices.push(a);
                values.extend(
                    ours[i * w..(i + 1) * w]
                        .iter()
                        .zip(&theirs[j * w..(j + 1) * w])
                        .map(|(&x, &y)| x + y),
                );
                i += 1;
                j += 1;
            }
        }
        self.indices = indices;
        self.values = device.try_from_host(values)?;
        Ok(())
    }

    /// As [`SparseGrad::try_add`], taking `other` by value: when this gradient holds
    /// no row (a gradient slot before the first backward writes it), `other`'s rows
    /// are moved in instead of copied.
    pub(crate) fn try_add_owned(&mut self, other: Self, device: &D) -> Result<(), Error> {
        self.check_same_table(&other)?;
        if self.is_empty() {
            *self = other;
            return Ok(());
        }
        self.try_add(&other, device)
    }

    /// Adds these rows into `dense`, a dense gradient of the same table (what a
    /// sparse contribution does to a gradient that is already dense, as in PyTorch).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `dense` does not hold `num_rows · row_len` elements.
    pub fn try_add_to_dense(&self, dense: &mut D::Vec, device: &D) -> Result<(), Error> {
        let len = self.dense_len()?;
        if D::len(dense) != len {
            return Err(Error::ShapeMismatch {
                op: "SparseGrad",
                message: format!(
                    "a dense gradient of {} elements cannot take rows of a {} × {} table",
                    D::len(dense),
                    self.num_rows,
                    self.row_len
                ),
            });
        }
        if self.is_empty() {
            return Ok(());
        }
        let mut host = device.try_to_host(dense)?;
        let values = device.try_to_host(&self.values)?;
        let w = self.row_len;
        for (row, &index) in values.chunks_exact(w.max(1)).zip(&self.indices) {
            for (d, &v) in host[index * w..(index + 1) * w].iter_mut().zip(row) {
                *d += v;
            }
        }
        *dense = device.try_from_host(host)?;
        Ok(())
    }

    fn check_same_table(&self, other: &Self) -> Result<(), Error> {
        if (self.num_rows, self.row_len) != (other.num_rows, other.row_len) {
            return Err(Error::ShapeMismatch {
                op: "SparseGrad",
                message: format!(
                    "cannot add the gradient of a {} × {} table to that of a {} × {} table",
                    other.num_rows, other.row_len, self.num_rows, self.row_len
                ),
            });
        }
        Ok(())
    }
}

/// Sorts the rows by index and sums those of one index, in the order they came (so
/// the sum is the one a scatter-add in lookup order computes): a row's first lookup is
/// copied, each later one added to it.
///
/// The result is allocated at its final size (one row per distinct index), so no
/// buffer sized for every lookup outlives the call. When the table has few rows for the
/// number of lookups (an embedding's vocabulary against a batch of bags of words), the
/// rows are placed by a counting pass over the table instead of a sort.
fn coalesce<E: Dtype>(num_rows: usize, indices: &[usize], rows: &[E], row_len: usize) -> (Vec<usize>, Vec<E>) {
    if num_rows <= 4 * indices.len() {
        return coalesce_by_counting(num_rows, indices, rows, row_len);
    }
    let mut order: Vec<usize> = (0..indices.len()).collect();
    // A stable sort keeps repeated indices in lookup order; already-sorted lookups
    // (a common batch layout) cost one pass.
    if !indices.windows(2).all(|w| w[0] <= w[1]) {
        order.sort_by_key(|&k| indices[k]);
    }
    let distinct = order
        .iter()
        .zip(order.iter().skip(1))
        .filter(|&(&a, &b)| indices[a] != indices[b])
        .count()
        + usize::from(!order.is_empty());
    let mut unique = Vec::with_capacity(distinct);
    let mut values: Vec<E> = Vec::with_capacity(distinct * row_len);
    for &k in &order {
        let row = &rows[k * row_len..(k + 1) * row_len];
        if unique.last() == Some(&indices[k]) {
            let start = values.len() - row_len;
            for (s, &v) in values[start..].iter_mut().zip(row) {
                *s += v;
            }
        } else {
            unique.push(indices[k]);
            values.extend_from_slice(row);
        }
    }
    (unique, values)
}

/// [`coalesce`] for indices below a small `num_rows`: each distinct index gets its
/// output row from a table of `num_rows` slots, and the lookups are then summed into
/// their rows in lookup order, the same sums in the same order as the sort's.
fn coalesce_by_counting<E: Dtype>(
    num_rows: usize,
    indices: &[usize],
    rows: &[E],
    row_len: usize,
) -> (Vec<usize>, Vec<E>) {
    const ABSENT: usize = usize::MAX;
    let mut slot = vec![ABSENT; num_rows];
    for &index in indices {
        slot[index] = 0;
    }
    let mut unique = Vec::with_capacity(indices.len().min(num_rows));
    for (index, slot) in slot.iter_mut().enumerate() {
        if *slot != ABSENT {
            *slot = unique.len();
            unique.push(index);
        }
    }
    let mut values: Vec<E> = vec![E::default(); unique.len() * row_len];
    let mut seen = vec![false; unique.len()];
    for (k, &index) in indices.iter().enumerate() {
        let at = slot[index];
        let row = &rows[k * row_len..(k + 1) * row_len];
        let out = &mut values[at * row_len..(at + 1) * row_len];
        if seen[at] {
            for (s, &v) in out.iter_mut().zip(row) {
                *s += v;
            }
        } else {
            out.copy_from_slice(row);
            seen[at] = true;
        }
    }
    (unique, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_testing::{TestDevice, test_device};

    #[test]
    fn coalescing_sums_repeats_in_lookup_order_and_sorts() {
        let dev = test_device();
        let g = SparseGrad::try_from_rows(&dev, 6, 1, &[5, 1, 5, 0, 1], &[1.0f64, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(g.indices(), &[0, 1, 5]);
        assert_eq!(dev.try_to_host(g.values()).unwrap(), [4.0, 7.0, 4.0]);
        assert_eq!(g.num_bytes(), 3 * 8 + 3 * 8);
    }

    #[test]
    fn counting_and_sorting_coalesce_to_the_same_bits() {
        // Sums whose value depends on their order (1e8 + 1 - 1e8 is not 1 in f32), with
        // rows repeated many times in a scrambled order, some rows absent, and -0.0.
        let (num_rows, row_len, lookups) = (37, 3, 400);
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let indices: Vec<usize> = (0..lookups).map(|_| next() % (num_rows - 5)).collect();
        let palette = [1e8f32, 1.0, -1e8, 0.25, -0.0, 3.5e-3];
        let rows: Vec<f32> = (0..lookups * row_len)
            .map(|_| palette[next() % palette.len()])
            .collect();
        let (counted_indices, counted) = coalesce_by_counting(num_rows, &indices, &rows, row_len);
        // A table far larger than the lookups takes the sorting path.
        let (sorted_indices, sorted) = coalesce(1 << 20, &indices, &rows, row_len);
        assert!(num_rows <= 4 * lookups, "coalesce would count here");
        assert_eq!(counted_indices, sorted_indices);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&counted), bits(&sorted));
        assert_eq!(sorted.capacity(), sorted.len(), "allocated at its final size");
        assert!(!counted_indices.contains(&(num_rows - 1)));
    }

    #[test]
    fn bad_indices_and_lengths_are_errors() {
        let dev = test_device();
        let err = SparseGrad::<f32, TestDevice>::try_from_rows(&dev, 4, 2, &[4], &[0.0, 0.0]).unwrap_err();
        assert!(
            err.to_string()
                .contains("row index 4 is out of bounds for a table of 4 rows"),
            "{err}"
        );
        assert!(SparseGrad::<f32, TestDevice>::try_from_rows(&dev, 4, 2, &[1], &[0.0]).is_err());
    }

    #[test]
    fn adding_merges_rows() {
        let dev = test_device();
        let mut a = SparseGrad::try_from_rows(&dev, 5, 2, &[1, 3], &[1.0f32, 1.0, 2.0, 2.0]).unwrap();
        let b = SparseGrad::try_from_rows(&dev, 5, 2, &[0, 3, 4], &[5.0f32, 5.0, 10.0, 10.0, 7.0, 7.0]).unwrap();
        a.try_add(&b, &dev).unwrap();
        assert_eq!(a.indices(), &[0, 1, 3, 4]);
        assert_eq!(
            dev.try_to_host(a.values()).unwrap(),
            [5.0, 5.0, 1.0, 1.0, 12.0, 12.0, 7.0, 7.0]
        );
        let mut dense = dev.try_alloc_filled(10, 1.0f32).unwrap();
        b.try_add_to_dense(&mut dense, &dev).unwrap();
        assert_eq!(
            dev.try_to_host(&dense).unwrap(),
            [6.0, 6.0, 1.0, 1.0, 1.0, 1.0, 11.0, 11.0, 8.0, 8.0]
        );
        let other = SparseGrad::<f32, TestDevice>::empty(5, 3);
        assert!(a.try_add(&other, &dev).is_err());
    }
}
