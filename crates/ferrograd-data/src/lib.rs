//! Data for ferrograd: datasets, seeded shuffling, batching, collation into tensors,
//! and a loader that prepares the next batch on another thread while the model trains
//! (PyTorch's `Dataset` and `DataLoader`), with MNIST built in.
//!
//! ```
//! use ferrograd_cpu::Cpu;
//! use ferrograd_data::{DataLoader, Digits, DigitsToTensors, LoaderConfig};
//!
//! // 5 000 real MNIST digits ship inside the crate: 400 of each class to train on,
//! // the other 100 of each class held out.
//! let (train, test) = Digits::embedded()?.split_per_class(400);
//! assert_eq!((train.len(), test.len()), (4000, 1000));
//!
//! let dev = Cpu::seed_from_u64(0);
//! let config = LoaderConfig { batch_size: 64, shuffle: true, seed: 0, ..Default::default() };
//! let loader = DataLoader::new(train, DigitsToTensors::new(dev), config)?;
//! assert_eq!(loader.len(), 63); // 62 full batches and a last one of 32
//! for batch in loader.iter(0).take(2) {
//!     let batch = batch?; // images (64, 1, 28, 28) in [0, 1], labels (64,)
//!     assert_eq!(batch.images.dims(), [64, 1, 28, 28]);
//!     assert_eq!(batch.labels.dims(), [64]);
//! }
//! # Ok::<(), ferrograd_device::Error>(())
//! ```
//!
//! The full MNIST (60 000 + 10 000 images) loads from its IDX files, raw or gzipped:
//! [`Digits::mnist`]. A damaged file is an [`Error::Dataset`](ferrograd_device::Error)
//! naming the file and what was wrong, never a panic.

mod dataset;
mod loader;
mod mnist;
mod sampler;

pub use dataset::Dataset;
pub use loader::{Batches, Collate, DataLoader, LoaderConfig};
pub use mnist::{
    CLASSES, Digit, DigitBatch, Digits, DigitsToTensors, IMAGE_PIXELS, IMAGE_SIDE, ImageBatch, LabelBatch, Split,
};
pub use sampler::{batch_indices, epoch_seed, num_batches, shuffled_indices};
