//! The data utilities as a training loop uses them: shuffling, batching, the loader
//! thread, MNIST's IDX files and the embedded digits.

use ferrograd_data::*;
use ferrograd_device::Error;
use ferrograd_testing::test_device;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh, empty scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX images file's bytes: header then `count` images whose pixels encode their
/// index, so a test can tell them apart.
fn idx_images(count: usize) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for size in [count, 28, 28] {
        bytes.extend_from_slice(&(size as u32).to_be_bytes());
    }
    for image in 0..count {
        bytes.extend((0..IMAGE_PIXELS).map(|p| ((image * 31 + p) % 256) as u8));
    }
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn dataset_message(error: Error) -> String {
    match error {
        Error::Dataset { .. } => error.to_string(),
        other => panic!("expected Error::Dataset, got {other:?}"),
    }
}

#[test]
fn idx_files_read_back_raw_and_gzipped() {
    let labels = [3u8, 1, 4, 1, 5, 9, 2];
    for gzipped in [false, true] {
        let dir = scratch(if gzipped { "idx-gz" } else { "idx-raw" });
        let (images, label_bytes) = (idx_images(labels.len()), idx_labels(&labels));
        let suffix = if gzipped { ".gz" } else { "" };
        let encode = |b: &[u8]| if gzipped { gzip(b) } else { b.to_vec() };
        write(&dir, &format!("t10k-images-idx3-ubyte{suffix}"), &encode(&images));
        write(&dir, &format!("t10k-labels-idx1-ubyte{suffix}"), &encode(&label_bytes));

        let digits = Digits::mnist(&dir, Split::Test).unwrap();
        assert_eq!(digits.len(), labels.len());
        assert_eq!(digits.labels(), labels);
        assert_eq!(digits.pixels(), &images[16..]);
        let fifth = digits.get_item(5).unwrap();
        assert_eq!(fifth.label, 9);
        assert_eq!(fifth.pixels[..], images[16 + 5 * IMAGE_PIXELS..16 + 6 * IMAGE_PIXELS]);
        assert!(digits.get_item(7).is_err());
        // The training files are not there, and the error says which were looked for.
        let missing = dataset_message(Digits::mnist(&dir, Split::Train).unwrap_err());
        assert!(missing.contains("train-images-idx3-ubyte"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn damaged_idx_files_are_errors_that_name_the_file_and_the_fault() {
    let dir = scratch("idx-bad");
    let images = idx_images(4);
    let labels = idx_labels(&[0, 1, 2, 3]);
    let good_images = write(&dir, "images", &images);
    let good_labels = write(&dir, "labels", &labels);
    assert!(Digits::from_idx_files(&good_images, &good_labels).is_ok());

    let check = |name: &str, images: &Path, labels: &Path, expected: &[&str]| {
        let message = dataset_message(Digits::from_idx_files(images, labels).unwrap_err());
        for part in expected {
            assert!(message.contains(part), "{name}: `{message}` lacks `{part}`");
        }
    };
    // Labels where images belong: the magic number says so.
    check(
        "swapped",
        &good_labels,
        &good_images,
        &["labels", "magic number 0x00000801", "0x00000803"],
    );
    let truncated = write(&dir, "truncated", &images[..images.len() - 100]);
    check(
        "truncated",
        &truncated,
        &good_labels,
        &["truncated", "truncated", "4 items"],
    );
    let compressed = gzip(&images);
    let truncated_gz = write(&dir, "truncated.gz", &compressed[..compressed.len() / 2]);
    check("truncated gzip", &truncated_gz, &good_labels, &["truncated.gz"]);
    let header_only = write(&dir, "header", &images[..10]);
    check("short header", &header_only, &good_labels, &["header", "truncated"]);
    let mut longer = images.clone();
    longer.push(0);
    let longer = write(&dir, "longer", &longer);
    check(
        "trailing",
        &longer,
        &good_labels,
        &["longer", "more data than the header"],
    );
    let mut small = images.clone();
    small[11] = 20; // 20 rows instead of 28
    let small = write(&dir, "small", &small);
    check("size", &small, &good_labels, &["20 × 28", "expected 28 × 28"]);
    let three_labels = write(&dir, "three", &idx_labels(&[0, 1, 2]));
    check(
        "count",
        &good_images,
        &three_labels,
        &["three", "3 labels for the 4 images"],
    );
    let bad_label = write(&dir, "bad-label", &idx_labels(&[0, 1, 12, 3]));
    check("label", &good_images, &bad_label, &["bad-label", "label 12 of item 2"]);
    check(
        "missing",
        &dir.join("nowhere"),
        &good_labels,
        &["nowhere", "cannot open"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shuffling_is_a_permutation_fixed_by_the_seed() {
    let a = shuffled_indices(1000, 7);
    assert_eq!(a, shuffled_indices(1000, 7));
    assert_ne!(a, shuffled_indices(1000, 8));
    assert_ne!(a, (0..1000).collect::<Vec<_>>());
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());

    // A loader's epochs each get their own order, the same in every run.
    let config = LoaderConfig {
        batch_size: 10,
        shuffle: true,
        seed: 3,
        ..Default::default()
    };
    let loader = DataLoader::new((0..100).collect::<Vec<usize>>(), |v: Vec<usize>| Ok(v), config).unwrap();
    assert_eq!(loader.batch_order(0), loader.batch_order(0));
    assert_ne!(loader.batch_order(0), loader.batch_order(1));
    let again = DataLoader::new((0..100).collect::<Vec<usize>>(), |v: Vec<usize>| Ok(v), config).unwrap();
    assert_eq!(loader.batch_order(4), again.batch_order(4));
}

#[test]
fn batching_keeps_or_drops_the_last_partial_batch() {
    for (len, batch_size, with, without) in [(10, 4, 3, 2), (12, 4, 3, 3), (3, 4, 1, 0), (0, 4, 0, 0), (5, 1, 5, 5)] {
        assert_eq!(num_batches(len, batch_size, false), with);
        assert_eq!(num_batches(len, batch_size, true), without);
        let indices: Vec<usize> = (0..len).collect();
        for (drop_last, count) in [(false, with), (true, without)] {
            let batches = batch_indices(&indices, batch_size, drop_last).unwrap();
            assert_eq!(
                batches.len(),
                count,
                "{len} items in {batch_size}s, drop_last {drop_last}"
            );
            assert!(
                batches
                    .iter()
                    .all(|b| b.len() == batch_size || (!drop_last && b.len() == len % batch_size))
            );
            let kept: Vec<usize> = batches.concat();
            assert_eq!(kept, indices[..kept.len()]);
            let loader = DataLoader::new(
                indices.clone(),
                |v: Vec<usize>| Ok(v.len()),
                LoaderConfig {
                    batch_size,
                    drop_last,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(loader.len(), count);
            assert_eq!(loader.iter(0).count(), count);
        }
    }
    assert!(batch_indices(&[1, 2], 0, false).is_err());
    assert!(
        DataLoader::new(
            vec![1u8],
            |v: Vec<u8>| Ok(v),
            LoaderConfig {
                batch_size: 0,
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn the_loader_thread_yields_the_batches_of_the_synchronous_path() {
    let (train, _) = Digits::embedded().unwrap().split_per_class(30);
    let dev = test_device();
    for prefetch in [1, 3] {
        let config = LoaderConfig {
            batch_size: 32,
            shuffle: true,
            seed: 11,
            drop_last: false,
            prefetch,
        };
        let loader = DataLoader::new(train.clone(), DigitsToTensors::new(dev.clone()), config).unwrap();
        assert_eq!(loader.len(), 10); // 300 digits: 9 × 32 + 12
        for epoch in 0..2 {
            let threaded: Vec<_> = loader.iter(epoch).map(Result::unwrap).collect();
            let here: Vec<_> = loader.iter_here(epoch).map(Result::unwrap).collect();
            assert_eq!(threaded.len(), 10);
            assert_eq!(threaded.last().unwrap().labels.dims(), [12]);
            for (a, b) in threaded.iter().zip(&here) {
                assert_eq!(a.images.dims(), b.images.dims());
                assert_eq!(a.images.as_vec(), b.images.as_vec());
                assert_eq!(a.labels.as_vec(), b.labels.as_vec());
            }
            // Every digit once per epoch.
            let mut seen: Vec<usize> = loader.batch_order(epoch).concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..300).collect::<Vec<_>>());
        }
        // Stopping early stops the thread (the drop joins it) without hanging.
        let mut partial = loader.iter(5);
        assert!(partial.next().unwrap().is_ok());
        drop(partial);
    }
}

#[test]
fn the_loader_reports_a_failing_item_and_ends_the_epoch() {
    let fussy = |items: Vec<u32>| -> Result<u32, Error> {
        match items.iter().find(|&&i| i == 5) {
            Some(_) => Err(Error::InvalidArgument {
                op: "fussy",
                message: "item 5".into(),
            }),
            None => Ok(items.iter().sum()),
        }
    };
    for prefetch in [0, 2] {
        let config = LoaderConfig {
            batch_size: 2,
            prefetch,
            ..Default::default()
        };
        let loader = DataLoader::new((0..10).collect::<Vec<u32>>(), fussy, config).unwrap();
        let results: Vec<_> = loader.iter(0).collect();
        // Batches [0, 1], [2, 3], then [4, 5] fails and nothing follows.
        assert_eq!(results.len(), 3, "prefetch {prefetch}");
        assert_eq!(results[1].as_ref().unwrap(), &5);
        assert!(results[2].as_ref().unwrap_err().to_string().contains("item 5"));
    }
}

#[test]
fn a_panicking_collate_is_an_error_not_a_hang() {
    let config = LoaderConfig {
        batch_size: 2,
        ..Default::default()
    };
    let loader = DataLoader::new(
        (0..6).collect::<Vec<u32>>(),
        |items: Vec<u32>| -> Result<u32, Error> {
            assert!(!items.contains(&3), "a bug in user code");
            Ok(0)
        },
        config,
    )
    .unwrap();
    let results: Vec<_> = loader.iter(0).collect();
    assert_eq!(results.len(), 2);
    assert!(results[1].as_ref().unwrap_err().to_string().contains("panicked"));
}

#[test]
fn the_embedded_digits_are_500_per_class_and_split_without_overlap() {
    let digits = Digits::embedded().unwrap();
    assert_eq!(digits.len(), 5000);
    assert_eq!(digits.pixels().len(), 5000 * IMAGE_PIXELS);
    for class in 0..10u8 {
        assert_eq!(digits.labels().iter().filter(|&&l| l == class).count(), 500);
    }
    let (train, test) = digits.split_per_class(400);
    assert_eq!((train.len(), test.len()), (4000, 1000));
    for class in 0..10u8 {
        assert_eq!(test.labels().iter().filter(|&&l| l == class).count(), 100);
    }
    // No held-out image is among the training images.
    let train_images: std::collections::HashSet<&[u8]> = train.pixels().chunks_exact(IMAGE_PIXELS).collect();
    let shared = test
        .pixels()
        .chunks_exact(IMAGE_PIXELS)
        .filter(|i| train_images.contains(i))
        .count();
    assert_eq!(shared, 0);
    let batch = DigitsToTensors::new(test_device())
        .try_collate(vec![test.get_item(0).unwrap()])
        .unwrap();
    let pixels = batch.images.as_vec();
    assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(pixels.contains(&1.0) || pixels.iter().any(|&p| p > 0.9));
}
