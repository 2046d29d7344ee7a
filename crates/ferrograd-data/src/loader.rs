//! [`DataLoader`]: a dataset in seeded, shuffled batches, collated by a [`Collate`],
//! prepared on a thread of its own while the caller trains.

use crate::dataset::Dataset;
use crate::sampler::{batch_indices, epoch_seed, num_batches, shuffled_indices};
use ferrograd_device::Error;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Turns the items of one batch into a batch: tensors, typically (PyTorch's
/// `collate_fn`). Any `Fn(Vec<I>) -> Result<B, Error>` is one.
///
/// ```
/// use ferrograd_data::Collate;
/// use ferrograd_device::Error;
///
/// let sum = |items: Vec<u32>| -> Result<u32, Error> { Ok(items.iter().sum()) };
/// assert_eq!(sum.try_collate(vec![1, 2, 3])?, 6);
/// # Ok::<(), Error>(())
/// ```
pub trait Collate<I> {
    /// What a batch is made into.
    type Batch;
    /// The batch made of `items`, in their order.
    fn try_collate(&self, items: Vec<I>) -> Result<Self::Batch, Error>;
}

impl<I, B, F: Fn(Vec<I>) -> Result<B, Error>> Collate<I> for F {
    type Batch = B;
    fn try_collate(&self, items: Vec<I>) -> Result<B, Error> {
        self(items)
    }
}

/// How a [`DataLoader`] batches: the defaults are PyTorch's `DataLoader`'s (batches
/// of 1, in order, the last partial batch kept) with 2 batches prefetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Items per batch (at least 1).
    pub batch_size: usize,
    /// Whether each epoch visits the items in a new random order, drawn from `seed`
    /// and the epoch's number ([`epoch_seed`]); if not, in index order.
    pub shuffle: bool,
    /// The seed of the shuffled orders: the same seed gives the same batches.
    pub seed: u64,
    /// Whether to leave out the last batch when it is shorter than `batch_size`.
    pub drop_last: bool,
    /// How many finished batches may wait for the caller while a thread of the
    /// loader's own prepares the next one; 0 prepares each batch on the caller's
    /// thread when it is asked for.
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 1,
            shuffle: false,
            seed: 0,
            drop_last: false,
            prefetch: 2,
        }
    }
}

/// A dataset served in batches, like PyTorch's `DataLoader`: the items of each batch
/// are read from a [`Dataset`] and made into one value (tensors) by a [`Collate`].
///
/// [`iter(epoch)`](DataLoader::iter) yields one epoch. With `prefetch > 0` a thread of
/// the loader's own reads and collates the batches ahead of the caller, at most
/// `prefetch` of them waiting (plus the one being built), so that loading overlaps
/// training; the batches and their order are the same either way, decided by the
/// seed and the epoch alone.
///
/// ```
/// use ferrograd_data::{DataLoader, LoaderConfig};
/// use ferrograd_device::Error;
///
/// // Ten numbers in batches of 4, shuffled, each batch collated into its sum.
/// let sum = |items: Vec<u32>| -> Result<u32, Error> { Ok(items.iter().sum()) };
/// let config = LoaderConfig { batch_size: 4, shuffle: true, seed: 1, ..Default::default() };
/// let loader = DataLoader::new((0..10).collect::<Vec<u32>>(), sum, config)?;
/// assert_eq!(loader.len(), 3); // 4 + 4 + 2
/// let sums = loader.iter(0).collect::<Result<Vec<u32>, Error>>()?;
/// assert_eq!(sums.iter().sum::<u32>(), 45); // every item exactly once
/// # Ok::<(), Error>(())
/// ```
pub struct DataLoader<DS, C> {
    dataset: Arc<DS>,
    collate: Arc<C>,
    config: LoaderConfig,
}

impl<DS: Dataset, C: Collate<DS::Item>> DataLoader<DS, C> {
    /// A loader of `dataset`'s items in batches made by `collate`.
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a `batch_size` of 0.
    pub fn new(dataset: DS, collate: C, config: LoaderConfig) -> Result<Self, Error> {
        if config.batch_size == 0 {
            return Err(Error::InvalidArgument {
                op: "DataLoader::new",
                message: "batch_size is 0; a batch needs at least one item".into(),
            });
        }
        Ok(Self {
            dataset: Arc::new(dataset),
            collate: Arc::new(collate),
            config,
        })
    }

    /// The dataset the batches come from.
    pub fn dataset(&self) -> &DS {
        &self.dataset
    }

    /// How the loader batches.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        num_batches(self.dataset.len(), self.config.batch_size, self.config.drop_last)
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The indices of the items of each batch of epoch `epoch`, in order.
    pub fn batch_order(&self, epoch: u64) -> Vec<Vec<usize>> {
        let order = if self.config.shuffle {
            shuffled_indices(self.dataset.len(), epoch_seed(self.config.seed, epoch))
        } else {
            (0..self.dataset.len()).collect()
        };
        batch_indices(&order, self.config.batch_size, self.config.drop_last)
            .expect("DataLoader::new checked that batch_size is not 0")
    }

    /// Epoch `epoch`'s batches, each made on the caller's thread when it is asked for
    /// (whatever `prefetch` says). [`DataLoader::iter`] yields the same batches.
    pub fn iter_here(&self, epoch: u64) -> Batches<'_, C::Batch> {
        let dataset = &*self.dataset;
        let collate = &*self.collate;
        let plan = self.batch_order(epoch);
        let remaining = plan.len();
        let batches = plan
            .into_iter()
            .map(move |indices| make_batch(dataset, collate, &indices));
        Batches {
            source: Source::Here(Box::new(batches)),
            remaining,
        }
    }
}

impl<DS, C> DataLoader<DS, C>
where
    DS: Dataset + Send + Sync + 'static,
    C: Collate<DS::Item> + Send + Sync + 'static,
    C::Batch: Send + 'static,
{
    /// Epoch `epoch`'s batches, prepared ahead on a thread of the loader's own when
    /// `prefetch > 0` (else as [`DataLoader::iter_here`]). The first `Err` (an item that
    /// cannot be read, a batch that cannot be collated) ends the epoch. Dropping the
    /// iterator early stops the thread.
    pub fn iter(&self, epoch: u64) -> Batches<'_, C::Batch> {
        if self.config.prefetch == 0 {
            return self.iter_here(epoch);
        }
        let plan = self.batch_order(epoch);
        let remaining = plan.len();
        let (sender, receiver) = sync_channel(self.config.prefetch);
        let dataset = Arc::clone(&self.dataset);
        let collate = Arc::clone(&self.collate);
        let spawned = std::thread::Builder::new()
            .name("ferrograd-data-loader".into())
            .spawn(move || produce(&*dataset, &*collate, plan, sender));
        match spawned {
            Ok(handle) => Batches {
                source: Source::Thread {
                    receiver: Some(receiver),
                    handle: Some(handle),
                },
                remaining,
            },
            // No thread to be had (a limit on threads): load on the caller's instead,
            // which gives the same batches, only without the overlap.
            Err(_) => self.iter_here(epoch),
        }
    }
}

/// Reads the items at `indices` and collates them.
fn make_batch<DS: Dataset, C: Collate<DS::Item>>(
    dataset: &DS,
    collate: &C,
    indices: &[usize],
) -> Result<C::Batch, Error> {
    let items = indices
        .iter()
        .map(|&index| dataset.get_item(index))
        .collect::<Result<Vec<_>, _>>()?;
    collate.try_collate(items)
}

/// The loader thread: makes the batches in order and sends them, until the plan is
/// done, a batch fails (sent, then stop) or the receiver is gone.
fn produce<DS: Dataset, C: Collate<DS::Item>>(
    dataset: &DS,
    collate: &C,
    plan: Vec<Vec<usize>>,
    sender: SyncSender<Result<C::Batch, Error>>,
) {
    for indices in plan {
        let batch = make_batch(dataset, collate, &indices);
        let failed = batch.is_err();
        if sender.send(batch).is_err() || failed {
            return;
        }
    }
}

/// One epoch's batches, from [`DataLoader::iter`] or [`DataLoader::iter_here`].
pub struct Batches<'a, B> {
    source: Source<'a, B>,
    remaining: usize,
}

enum Source<'a, B> {
    Here(Box<dyn Iterator<Item = Result<B, Error>> + 'a>),
    Thread {
        receiver: Option<Receiver<Result<B, Error>>>,
        handle: Option<JoinHandle<()>>,
    },
}

impl<B> Iterator for Batches<'_, B> {
    type Item = Result<B, Error>;

    fn next(&mut self) -> Option<Result<B, Error>> {
        if self.remaining == 0 {
            return None;
        }
        let batch = match &mut self.source {
            Source::Here(batches) => batches.next(),
            Source::Thread { receiver, handle } => match receiver.as_ref().map(Receiver::recv) {
                Some(Ok(batch)) => Some(batch),
                // The thread ended before the plan did: it panicked (in a user's
                // `Dataset::get_item` or `Collate`, say). Report it as an error, once.
                _ => {
                    *receiver = None;
                    let panicked = handle.take().map(JoinHandle::join).is_some_and(|r| r.is_err());
                    panicked.then(|| {
                        Err(Error::Dataset {
                            path: "DataLoader".into(),
                            message: "the loader thread panicked while preparing a batch".into(),
                        })
                    })
                }
            },
        };
        // The first error ends the epoch, on either path, so both yield the same.
        self.remaining = match &batch {
            Some(Ok(_)) => self.remaining - 1,
            _ => 0,
        };
        batch
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl<B> Drop for Batches<'_, B> {
    fn drop(&mut self) {
        if let Source::Thread { receiver, handle } = &mut self.source {
            // Closing the channel first makes the thread's next send fail, so it stops
            // after the batch it is making rather than finishing the epoch.
            drop(receiver.take());
            if let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
    }
}
