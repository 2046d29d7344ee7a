//! The order of an epoch: seeded shuffling and batches of indices.

use ferrograd_device::Error;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The indices `0..len` in a random order that depends only on `seed` (a Fisher–Yates
/// shuffle driven by a seeded `StdRng`), so that a run can be repeated exactly.
///
/// ```
/// use ferrograd_data::shuffled_indices;
///
/// let order = shuffled_indices(10, 42);
/// assert_eq!(order, shuffled_indices(10, 42)); // the same seed, the same order
/// let mut sorted = order.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..10).collect::<Vec<_>>()); // a permutation
/// ```
pub fn shuffled_indices(len: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..len).collect();
    indices.shuffle(&mut StdRng::seed_from_u64(seed));
    indices
}

/// The seed of epoch `epoch` of a run seeded with `seed`: every epoch gets its own
/// order, and the orders follow from `seed` alone. SplitMix64's finaliser mixes the
/// two, so nearby seeds and epochs give unrelated orders.
///
/// ```
/// use ferrograd_data::epoch_seed;
/// assert_ne!(epoch_seed(0, 0), epoch_seed(0, 1));
/// assert_eq!(epoch_seed(7, 3), epoch_seed(7, 3));
/// ```
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many batches of `batch_size` items `len` items make: the last, partial batch
/// counts unless `drop_last` (PyTorch's `drop_last`). Zero for a `batch_size` of 0.
///
/// ```
/// use ferrograd_data::num_batches;
/// assert_eq!(num_batches(10, 4, false), 3); // 4 + 4 + 2
/// assert_eq!(num_batches(10, 4, true), 2); // 4 + 4
/// ```
pub fn num_batches(len: usize, batch_size: usize, drop_last: bool) -> usize {
    match batch_size {
        0 => 0,
        _ if drop_last => len / batch_size,
        _ => len.div_ceil(batch_size),
    }
}

/// `indices` cut into consecutive batches of `batch_size`, in order; the last batch is
/// shorter when `batch_size` does not divide the count, and left out if `drop_last`.
///
/// # Errors
/// `Error::InvalidArgument` for a `batch_size` of 0.
///
/// ```
/// use ferrograd_data::batch_indices;
///
/// let batches = batch_indices(&[4, 0, 3, 1, 2], 2, false)?;
/// assert_eq!(batches, vec![vec![4, 0], vec![3, 1], vec![2]]);
/// assert_eq!(batch_indices(&[4, 0, 3, 1, 2], 2, true)?.len(), 2);
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
pub fn batch_indices(indices: &[usize], batch_size: usize, drop_last: bool) -> Result<Vec<Vec<usize>>, Error> {
    if batch_size == 0 {
        return Err(Error::InvalidArgument {
            op: "batch_indices",
            message: "batch_size is 0; a batch needs at least one item".into(),
        });
    }
    Ok(indices
        .chunks(batch_size)
        .filter(|batch| !drop_last || batch.len() == batch_size)
        .map(<[usize]>::to_vec)
        .collect())
}
