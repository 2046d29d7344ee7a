//! The [`Dataset`] trait: items by index, as PyTorch's map-style `Dataset`.

use ferrograd_device::Error;
use std::sync::Arc;

/// A collection of items that can be read by index, like PyTorch's map-style
/// `Dataset` (`__len__` and `__getitem__`).
///
/// [`get_item`](Dataset::get_item) returns a `Result` so that a dataset that reads lazily (from
/// disk, say) reports a bad item instead of panicking; an index out of range is an
/// `Err` too. A [`DataLoader`](crate::DataLoader) that prefetches on another thread
/// needs the dataset to be `Send + Sync + 'static`.
///
/// ```
/// use ferrograd_data::Dataset;
/// use ferrograd_device::Error;
///
/// /// The squares of 0..n.
/// struct Squares(usize);
///
/// impl Dataset for Squares {
///     type Item = (usize, usize);
///     fn len(&self) -> usize {
///         self.0
///     }
///     fn get_item(&self, index: usize) -> Result<(usize, usize), Error> {
///         if index >= self.0 {
///             return Err(Error::InvalidArgument {
///                 op: "Squares::get_item",
///                 message: format!("index {index} out of range 0..{}", self.0),
///             });
///         }
///         Ok((index, index * index))
///     }
/// }
///
/// assert_eq!(Squares(4).get_item(3)?, (3, 9));
/// assert!(Squares(4).get_item(4).is_err());
/// // A Vec is a dataset of its elements.
/// assert_eq!(vec!['a', 'b'].get_item(1)?, 'b');
/// // Named `get_item` (Python's `__getitem__`), not `get`, so that with the trait in
/// // scope `vec.get(i)` is still the slice's `Option`-returning `get`.
/// assert_eq!(vec!['a', 'b'].get(2), None);
/// # Ok::<(), Error>(())
/// ```
pub trait Dataset {
    /// One item: an image and its label, say.
    type Item;
    /// The number of items.
    fn len(&self) -> usize;
    /// Whether the dataset has no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The item at `index`, in `0..len()`; an `Err` for an index out of range or an
    /// item that cannot be read.
    fn get_item(&self, index: usize) -> Result<Self::Item, Error>;
}

/// The error for an index past the end, shared by the implementations here.
pub(crate) fn out_of_range(op: &'static str, index: usize, len: usize) -> Error {
    Error::InvalidArgument {
        op,
        message: format!("index {index} is out of range for a dataset of {len} items (0..{len})"),
    }
}

/// A `Vec` is a dataset of clones of its elements.
impl<T: Clone> Dataset for Vec<T> {
    type Item = T;
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn get_item(&self, index: usize) -> Result<T, Error> {
        <[T]>::get(self, index)
            .cloned()
            .ok_or_else(|| out_of_range("Dataset::get_item (Vec)", index, self.len()))
    }
}

/// A shared dataset is the dataset it points to.
impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get_item(&self, index: usize) -> Result<D::Item, Error> {
        (**self).get_item(index)
    }
}
