//! Checkpoints as npz files — a zip of one `.npy` array per parameter, named by its
//! `state_dict` key — which numpy and PyTorch read as they are:
//!
//! ```python
//! import numpy as np, torch
//! state = {k: torch.from_numpy(v) for k, v in np.load("model.npz").items()}
//! model.load_state_dict(state)
//! ```
//!
//! and which a PyTorch model's `np.savez("model.npz", **{k: v.numpy() for k, v in
//! model.state_dict().items()})` gives back to ferrograd.
//!
//! Writing is atomic: the file is written beside the target under a temporary name,
//! flushed to disk, then renamed over it, so a failure mid-write leaves the previous
//! checkpoint whole. Reading trusts nothing in the file: it reads at most the bytes the
//! model's own parameters need, checks each array's dtype and shape against the
//! parameter's before changing anything, and reports a missing, unexpected, duplicated
//! or damaged entry as an [`Error::Checkpoint`] naming the key.

use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut, Tensor, VisitParameters};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The element types a checkpoint holds, with their numpy names.
pub trait CheckpointElement: Dtype + npyz::AutoSerialize + sealed::Sealed {
    /// numpy's name for the type, as in error messages (`float32`).
    const NUMPY_NAME: &'static str;
    /// Bytes per element.
    const BYTES: usize;
    /// The element from its bytes, little-endian or big-endian.
    fn from_bytes(bytes: &[u8], little_endian: bool) -> Self;
    /// Appends the element's little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

macro_rules! checkpoint_element {
    ($type:ty, $name:literal) => {
        impl CheckpointElement for $type {
            const NUMPY_NAME: &'static str = $name;
            const BYTES: usize = std::mem::size_of::<$type>();
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_bytes(bytes: &[u8], little_endian: bool) -> Self {
                let bytes = bytes.try_into().expect("callers pass exactly BYTES bytes");
                if little_endian {
                    <$type>::from_le_bytes(bytes)
                } else {
                    <$type>::from_be_bytes(bytes)
                }
            }
        }
    };
}
checkpoint_element!(f32, "float32");
checkpoint_element!(f64, "float64");

/// How [`Checkpoint::load_with`] treats keys that do not match the model's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Whether a parameter missing from the file, or an entry in the file that is not
    /// a parameter, is an error (PyTorch's `load_state_dict(strict=True)`, the
    /// default). When false they are reported and the missing parameters keep their
    /// values.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { strict: true }
    }
}

/// What a load did not match, like the result of PyTorch's `load_state_dict`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The model's parameters that the file does not hold, sorted.
    pub missing_keys: Vec<String>,
    /// The file's entries that are not parameters of the model, sorted.
    pub unexpected_keys: Vec<String>,
}

/// Saving and loading any model's parameters as npz (see the [module](self) docs).
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// type Mlp = (Linear<4, 8>, ReLU, Linear<8, 2>);
/// let model = dev.build_module::<Mlp, f32>();
/// let path = std::env::temp_dir().join(format!("ferrograd-doc-{}.npz", std::process::id()));
/// model.save(&path)?;
///
/// let mut other = dev.build_module::<Mlp, f32>();
/// other.load(&path)?;
/// assert_eq!(other.0.weight.as_vec(), model.0.weight.as_vec());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), Error>(())
/// ```
pub trait Checkpoint<E: CheckpointElement, D: Storage<E>>: VisitParameters<E, D> {
    /// Writes every parameter to `path` as npz, atomically: on failure the file at
    /// `path`, if any, is unchanged.
    fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        write_atomically(path, |file| {
            let mut writer = NpzWriter {
                zip: zip::ZipWriter::new(file),
                names: BTreeSet::new(),
            };
            self.visit_parameters(&mut writer)?;
            let file = writer
                .zip
                .finish()
                .map_err(|e| unnamed(format!("cannot finish the zip: {e}")))?;
            Ok(file)
        })
        .map_err(|error| with_path(error, path))
    }

    /// Reads every parameter from `path`, which must hold exactly the model's
    /// parameters with their shapes and dtype. On error the model is unchanged.
    fn load(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        self.load_with(path, LoadOptions::default()).map(|_| ())
    }

    /// [`Checkpoint::load`] with options; returns the keys that did not match (empty
    /// unless `strict` is off). On error the model is unchanged.
    fn load_with(&mut self, path: impl AsRef<Path>, options: LoadOptions) -> Result<LoadReport, Error> {
        let path = path.as_ref();
        let context = |message: String| Error::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let file = File::open(path).map_err(|e| context(format!("cannot open: {e}")))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| context(format!("not a readable npz (zip) file: {e}")))?;
        let entries = index_entries(&mut archive).map_err(context)?;

        load_matching(self, entries.keys(), options, context, |entry| {
            let index = entries[&entry.name];
            match &entry.kind {
                Kind::Floats(dims) => read_array::<E, _>(&mut archive, index, &entry.name, dims).map(Loaded::Floats),
                Kind::Count => read_count(&mut archive, index, &entry.name).map(Loaded::Count),
            }
        })
    }
}

/// Loads into `model` the file's keys that are the model's, reading each with `read`:
/// the key check (strict or not) and the rule that nothing changes until every entry
/// has been read and checked, shared by the file formats.
fn load_matching<'k, E: Dtype, D: Storage<E>, M: VisitParameters<E, D> + ?Sized>(
    model: &mut M,
    file_keys: impl Iterator<Item = &'k String>,
    options: LoadOptions,
    context: impl Fn(String) -> Error,
    mut read: impl FnMut(&ExpectedEntry) -> Result<Loaded<E>, String>,
) -> Result<LoadReport, Error> {
    let file_keys: BTreeSet<&str> = file_keys.map(String::as_str).collect();
    let mut expected = Expected::default();
    model.visit_parameters(&mut expected)?;
    let wanted: BTreeSet<&str> = expected.entries.iter().map(|p| p.name.as_str()).collect();
    let report = LoadReport {
        missing_keys: wanted.difference(&file_keys).map(|name| name.to_string()).collect(),
        unexpected_keys: file_keys.difference(&wanted).map(|name| name.to_string()).collect(),
    };
    if options.strict && (!report.missing_keys.is_empty() || !report.unexpected_keys.is_empty()) {
        return Err(context(format!(
            "the keys do not match the model's: missing {:?}, unexpected {:?} (load_with and \
             LoadOptions {{ strict: false }} loads the keys that match)",
            report.missing_keys, report.unexpected_keys
        )));
    }
    let mut values = BTreeMap::new();
    for entry in expected.entries.iter().filter(|e| file_keys.contains(e.name.as_str())) {
        values.insert(entry.name.clone(), read(entry).map_err(&context)?);
    }
    model.visit_parameters_mut(&mut Assign { values: &mut values })?;
    Ok(report)
}

impl<E: CheckpointElement, D: Storage<E>, M: VisitParameters<E, D>> Checkpoint<E, D> for M {}

/// Checkpoints in Hugging Face's safetensors format (feature `safetensors`), with the
/// same keys, strictness and guarantees as the npz ones: written atomically, read only
/// as far as the file's own size, checked before the model changes. PyTorch reads them
/// with `safetensors.torch.load_file(path)`.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::checkpoint::SafetensorsCheckpoint;
///
/// let dev = Cpu::seed_from_u64(0);
/// let model = dev.build_module::<(Linear<4, 8>, BatchNorm1D<8>), f32>();
/// let path = std::env::temp_dir().join(format!("ferrograd-doc-{}.safetensors", std::process::id()));
/// model.save_safetensors(&path)?;
/// let mut other = dev.build_module::<(Linear<4, 8>, BatchNorm1D<8>), f32>();
/// other.load_safetensors(&path)?;
/// assert_eq!(other.0.weight.as_vec(), model.0.weight.as_vec());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), Error>(())
/// ```
#[cfg(feature = "safetensors")]
pub trait SafetensorsCheckpoint<E: CheckpointElement, D: Storage<E>>: VisitParameters<E, D> {
    /// Writes every parameter, buffer and counter to `path` as safetensors, atomically.
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let mut collect = safetensors_format::Collect::default();
        self.visit_parameters(&mut collect)
            .map_err(|error| with_path(error, path))?;
        let bytes = collect.serialize().map_err(|error| with_path(error, path))?;
        write_atomically(path, |mut file| {
            file.write_all(&bytes)
                .map_err(|e| unnamed(format!("cannot write: {e}")))?;
            Ok(file)
        })
        .map_err(|error| with_path(error, path))
    }

    /// Reads every parameter, buffer and counter from `path`, strictly.
    fn load_safetensors(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        self.load_safetensors_with(path, LoadOptions::default()).map(|_| ())
    }

    /// [`SafetensorsCheckpoint::load_safetensors`] with options, as
    /// [`Checkpoint::load_with`].
    fn load_safetensors_with(&mut self, path: impl AsRef<Path>, options: LoadOptions) -> Result<LoadReport, Error> {
        let path = path.as_ref();
        let context = |message: String| Error::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| context(format!("cannot read: {e}")))?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| context(format!("not a valid safetensors file: {e}")))?;
        let keys: Vec<String> = file.names().into_iter().map(str::to_string).collect();
        load_matching(self, keys.iter(), options, context, |entry| {
            safetensors_format::read::<E>(&file, entry)
        })
    }
}

#[cfg(feature = "safetensors")]
impl<E: CheckpointElement, D: Storage<E>, M: VisitParameters<E, D>> SafetensorsCheckpoint<E, D> for M {}

/// The safetensors side: what is written, and reading one entry.
#[cfg(feature = "safetensors")]
mod safetensors_format {
    use super::*;
    use safetensors::Dtype as StDtype;

    /// Every tensor and counter of a model, as little-endian bytes.
    #[derive(Default)]
    pub(super) struct Collect {
        entries: Vec<(String, StDtype, Vec<usize>, Vec<u8>)>,
    }

    fn float_dtype<E: CheckpointElement>() -> StDtype {
        if E::BYTES == 4 { StDtype::F32 } else { StDtype::F64 }
    }

    impl Collect {
        fn push_tensor<S: Shape, E: CheckpointElement, D: Storage<E>>(
            &mut self,
            name: &str,
            tensor: &Tensor<S, E, D>,
        ) -> Result<(), Error> {
            if self.entries.iter().any(|(n, ..)| n == name) {
                return Err(unnamed(format!("the model has two tensors named {name:?}")));
            }
            let mut bytes = Vec::with_capacity(tensor.num_elements() * E::BYTES);
            for value in tensor.try_as_vec()? {
                value.write_le(&mut bytes);
            }
            self.entries.push((
                name.to_string(),
                float_dtype::<E>(),
                tensor.layout().dims().to_vec(),
                bytes,
            ));
            Ok(())
        }

        pub(super) fn serialize(self) -> Result<Vec<u8>, Error> {
            let views = self
                .entries
                .iter()
                .map(|(name, dtype, shape, bytes)| {
                    safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                        .map(|view| (name.clone(), view))
                        .map_err(|e| unnamed(format!("{name:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            safetensors::serialize(views, None).map_err(|e| unnamed(format!("cannot serialize: {e}")))
        }
    }

    impl<E: CheckpointElement, D: Storage<E>> ParameterVisitor<E, D> for Collect {
        fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
            self.push_tensor(name, parameter)
        }
        fn visit_buffer<S: Shape>(&mut self, name: &str, buffer: &Tensor<S, E, D>) -> Result<(), Error> {
            self.push_tensor(name, buffer)
        }
        fn visit_count(&mut self, name: &str, count: u64) -> Result<(), Error> {
            let count =
                i64::try_from(count).map_err(|_| unnamed(format!("{name:?}: {count} does not fit an int64")))?;
            self.entries
                .push((name.to_string(), StDtype::I64, Vec::new(), count.to_le_bytes().to_vec()));
            Ok(())
        }
    }

    /// The entry for `entry`, checked against what the model holds there.
    pub(super) fn read<E: CheckpointElement>(
        file: &safetensors::SafeTensors<'_>,
        entry: &ExpectedEntry,
    ) -> Result<Loaded<E>, String> {
        let key = &entry.name;
        let view = file.tensor(key).map_err(|e| format!("{key:?}: {e}"))?;
        match &entry.kind {
            Kind::Floats(dims) => {
                if view.dtype() != float_dtype::<E>() {
                    return Err(format!(
                        "{key:?}: the tensor is of dtype {:?}; the model's is {}",
                        view.dtype(),
                        E::NUMPY_NAME
                    ));
                }
                if view.shape() != dims.as_slice() {
                    return Err(format!(
                        "{key:?}: the tensor's shape is {}; the model's is {}",
                        format_dims(view.shape()),
                        format_dims(dims)
                    ));
                }
                // The crate has checked that the data spans exactly the shape.
                Ok(Loaded::Floats(
                    view.data()
                        .chunks_exact(E::BYTES)
                        .map(|b| E::from_bytes(b, true))
                        .collect(),
                ))
            }
            Kind::Count => {
                let data: [u8; 8] = view
                    .data()
                    .try_into()
                    .ok()
                    .filter(|_| view.dtype() == StDtype::I64 && view.shape().iter().product::<usize>() == 1)
                    .ok_or_else(|| {
                        format!(
                            "{key:?}: expected an int64 scalar, found {:?} {}",
                            view.dtype(),
                            format_dims(view.shape())
                        )
                    })?;
                u64::try_from(i64::from_le_bytes(data))
                    .map_err(|_| format!("{key:?}: the counter is negative"))
                    .map(Loaded::Count)
            }
        }
    }
}

/// Named arrays written into an npz: what [`Checkpoint::save`] is made of, for state
/// that is not a model's (an optimizer's moments). See [`save_archive`].
pub struct ArchiveWriter {
    inner: NpzWriter<BufWriter<File>>,
}

impl ArchiveWriter {
    /// Writes `values`, row-major in `dims`, as the entry `name.npy`.
    pub fn write_floats<E: CheckpointElement>(
        &mut self,
        name: &str,
        dims: &[usize],
        values: Vec<E>,
    ) -> Result<(), Error> {
        if dims.iter().product::<usize>() != values.len() {
            return Err(unnamed(format!(
                "{name:?}: {} values cannot have the shape {}",
                values.len(),
                format_dims(dims)
            )));
        }
        let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        self.inner.write(name, &shape, values)
    }

    /// Writes `count` as an int64 scalar, the entry `name.npy`.
    pub fn write_count(&mut self, name: &str, count: u64) -> Result<(), Error> {
        let count = i64::try_from(count).map_err(|_| unnamed(format!("{name:?}: {count} does not fit an int64")))?;
        self.inner.write(name, &[], vec![count])
    }
}

/// Writes an npz of the arrays `fill` writes, atomically, as [`Checkpoint::save`] does.
///
/// ```
/// use ferrograd_nn::checkpoint::{ArchiveReader, ArchiveEntry, save_archive};
///
/// let path = std::env::temp_dir().join(format!("ferrograd-archive-{}.npz", std::process::id()));
/// save_archive(&path, |archive| {
///     archive.write_floats("moment", &[2], vec![0.5f32, -1.0])?;
///     archive.write_count("step", 3)
/// })?;
/// let mut archive = ArchiveReader::open(&path)?;
/// assert_eq!(archive.keys().collect::<Vec<_>>(), ["moment", "step"]);
/// assert!(matches!(archive.read::<f32>("step")?, ArchiveEntry::Count(3)));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
pub fn save_archive(
    path: impl AsRef<Path>,
    fill: impl FnOnce(&mut ArchiveWriter) -> Result<(), Error>,
) -> Result<(), Error> {
    let path = path.as_ref();
    write_atomically(path, |file| {
        let mut writer = ArchiveWriter {
            inner: NpzWriter {
                zip: zip::ZipWriter::new(file),
                names: BTreeSet::new(),
            },
        };
        fill(&mut writer)?;
        writer
            .inner
            .zip
            .finish()
            .map_err(|e| unnamed(format!("cannot finish the zip: {e}")))
    })
    .map_err(|error| with_path(error, path))
}

/// One entry of an archive read by [`ArchiveReader::read`].
#[derive(Clone, Debug, PartialEq)]
pub enum ArchiveEntry<E> {
    /// Floats of the requested dtype, row-major in their dims.
    Floats(Vec<usize>, Vec<E>),
    /// An int64 scalar, as [`ArchiveWriter::write_count`] writes.
    Count(u64),
}

/// Reads the named arrays of an npz whose shapes the caller does not know in advance
/// (an optimizer's state). No entry is read past the file's own size, whatever it
/// declares.
pub struct ArchiveReader {
    archive: zip::ZipArchive<BufReader<File>>,
    entries: BTreeMap<String, usize>,
    path: PathBuf,
    file_bytes: usize,
}

impl ArchiveReader {
    /// Opens the npz at `path`, refusing one that is not a zip or stores a key twice.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let context = |message: String| Error::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let file = File::open(&path).map_err(|e| context(format!("cannot open: {e}")))?;
        let file_bytes = file.metadata().map_err(|e| context(format!("cannot read: {e}")))?.len() as usize;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| context(format!("not a readable npz (zip) file: {e}")))?;
        let entries = index_entries(&mut archive).map_err(context)?;
        Ok(Self {
            archive,
            entries,
            path,
            file_bytes,
        })
    }

    /// The keys (entry names without `.npy`), sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The entry `key`: floats of dtype `E` in any shape, or an int64 counter.
    pub fn read<E: CheckpointElement>(&mut self, key: &str) -> Result<ArchiveEntry<E>, Error> {
        let context = |message: String| Error::Checkpoint {
            path: self.path.display().to_string(),
            message,
        };
        let &index = self
            .entries
            .get(key)
            .ok_or_else(|| context(format!("there is no key {key:?}")))?;
        let what = || "this file".to_string();
        let bytes = read_entry(&mut self.archive, index, key, self.file_bytes, &what).map_err(context)?;
        let header = NpyHeader::parse(&bytes).map_err(|e| context(format!("{key:?}: not a valid .npy array: {e}")))?;
        let data = &bytes[header.data_start..];
        if byte_order(&header.descr, "i8").is_some() {
            let index = self.entries[key];
            return read_count(&mut self.archive, index, key)
                .map(ArchiveEntry::Count)
                .map_err(context);
        }
        let little_endian = byte_order(&header.descr, &format!("f{}", E::BYTES)).ok_or_else(|| {
            context(format!(
                "{key:?}: the array is of dtype {:?} ({}); expected {}",
                header.descr,
                describe_descr(&header.descr),
                E::NUMPY_NAME
            ))
        })?;
        let elements = header
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n.checked_mul(E::BYTES) == Some(data.len()))
            .ok_or_else(|| {
                context(format!(
                    "{key:?}: the shape {} does not match the {} bytes of data",
                    format_dims(&header.shape),
                    data.len()
                ))
            })?;
        let mut values: Vec<E> = data
            .chunks_exact(E::BYTES)
            .map(|b| E::from_bytes(b, little_endian))
            .collect();
        debug_assert_eq!(values.len(), elements);
        if header.fortran_order {
            values = fortran_to_row_major(&values, &header.shape);
        }
        Ok(ArchiveEntry::Floats(header.shape, values))
    }
}

/// Writes each parameter it visits as `name.npy` into the zip.
struct NpzWriter<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    names: BTreeSet<String>,
}

impl<W: Write + Seek> NpzWriter<W> {
    /// Starts the entry `name.npy`, refusing a name used twice.
    fn start(&mut self, name: &str, bytes: usize) -> Result<(), Error> {
        if !self.names.insert(name.to_string()) {
            return Err(unnamed(format!("the model has two tensors named {name:?}")));
        }
        // Stored, not deflated: as numpy's `savez`, and quick for large models.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(bytes >= u32::MAX as usize);
        self.zip
            .start_file(format!("{name}.npy"), options)
            .map_err(|e| unnamed(format!("cannot write {name:?}: {e}")))
    }

    /// Writes `values` of `shape` as the entry `name.npy`.
    fn write<T: npyz::AutoSerialize>(&mut self, name: &str, shape: &[u64], values: Vec<T>) -> Result<(), Error> {
        self.start(name, values.len() * size_of::<T>())?;
        let write = |zip: &mut zip::ZipWriter<W>| -> std::io::Result<()> {
            use npyz::WriterBuilder;
            let mut writer = npyz::WriteOptions::<T>::new()
                .default_dtype()
                .shape(shape)
                .writer(zip)
                .begin_nd()?;
            writer.extend(values)?;
            writer.finish()
        };
        write(&mut self.zip).map_err(|e| unnamed(format!("cannot write {name:?}: {e}")))
    }

    fn write_tensor<S: Shape, E: CheckpointElement, D: Storage<E>>(
        &mut self,
        name: &str,
        tensor: &Tensor<S, E, D>,
    ) -> Result<(), Error> {
        let shape: Vec<u64> = tensor.layout().dims().iter().map(|&d| d as u64).collect();
        self.write(name, &shape, tensor.try_as_vec()?)
    }
}

/// A checkpoint error whose file the caller fills in ([`with_path`]).
fn unnamed(message: String) -> Error {
    Error::Checkpoint {
        path: String::new(),
        message,
    }
}

impl<E: CheckpointElement, D: Storage<E>, W: Write + Seek> ParameterVisitor<E, D> for NpzWriter<W> {
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        self.write_tensor(name, parameter)
    }

    fn visit_buffer<S: Shape>(&mut self, name: &str, buffer: &Tensor<S, E, D>) -> Result<(), Error> {
        self.write_tensor(name, buffer)
    }

    fn visit_count(&mut self, name: &str, count: u64) -> Result<(), Error> {
        // PyTorch keeps counters as int64 scalars.
        let count = i64::try_from(count).map_err(|_| unnamed(format!("{name:?}: {count} does not fit an int64")))?;
        self.write(name, &[], vec![count])
    }
}

/// What the model holds under one key.
enum Kind {
    /// A parameter or buffer of these dims.
    Floats(Vec<usize>),
    /// An integer counter.
    Count,
}

/// A key of the model's, and what it holds.
struct ExpectedEntry {
    name: String,
    kind: Kind,
}

/// Collects the model's keys: parameters, buffers and counters.
#[derive(Default)]
struct Expected {
    entries: Vec<ExpectedEntry>,
}

impl Expected {
    fn push(&mut self, name: &str, kind: Kind) {
        self.entries.push(ExpectedEntry {
            name: name.to_string(),
            kind,
        });
    }
}

impl<E: Dtype, D: Storage<E>> ParameterVisitor<E, D> for Expected {
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        self.push(name, Kind::Floats(parameter.layout().dims().to_vec()));
        Ok(())
    }

    fn visit_buffer<S: Shape>(&mut self, name: &str, buffer: &Tensor<S, E, D>) -> Result<(), Error> {
        self.push(name, Kind::Floats(buffer.layout().dims().to_vec()));
        Ok(())
    }

    fn visit_count(&mut self, name: &str, _: u64) -> Result<(), Error> {
        self.push(name, Kind::Count);
        Ok(())
    }
}

/// A value read from the file, checked against the model's.
enum Loaded<E> {
    Floats(Vec<E>),
    Count(u64),
}

/// Puts the values read into the parameters, buffers and counters, keeping each
/// tensor's id.
struct Assign<'a, E> {
    values: &'a mut BTreeMap<String, Loaded<E>>,
}

impl<E: Dtype> Assign<'_, E> {
    fn assign<S: Shape, D: Storage<E>>(&mut self, name: &str, tensor: &mut Tensor<S, E, D>) -> Result<(), Error> {
        let Some(Loaded::Floats(values)) = self.values.remove(name) else {
            return Ok(());
        };
        // Built tensors are contiguous from offset 0; anything else would be a view
        // into a buffer the new values cannot simply replace.
        if !tensor.layout().is_contiguous() || tensor.layout().offset() != 0 {
            return Err(Error::InvalidArgument {
                op: "load",
                message: format!("{name:?} is a strided view; load needs contiguous tensors"),
            });
        }
        let buffer = tensor.device().try_from_host(values)?;
        *tensor.storage_mut() = buffer;
        Ok(())
    }
}

impl<E: Dtype, D: Storage<E>> ParameterVisitorMut<E, D> for Assign<'_, E> {
    fn visit_mut<S: Shape>(&mut self, name: &str, parameter: &mut Tensor<S, E, D>) -> Result<(), Error> {
        self.assign(name, parameter)
    }

    fn visit_buffer_mut<S: Shape>(&mut self, name: &str, buffer: &mut Tensor<S, E, D>) -> Result<(), Error> {
        self.assign(name, buffer)
    }

    fn visit_count_mut(&mut self, name: &str, count: &mut u64) -> Result<(), Error> {
        if let Some(Loaded::Count(value)) = self.values.remove(name) {
            *count = value;
        }
        Ok(())
    }
}

/// The archive's entries by key (the entry name without `.npy`), rejecting duplicates.
fn index_entries<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Result<BTreeMap<String, usize>, String> {
    // The archive keeps one entry per name, so a repeated name is only flagged.
    if archive.has_duplicate_names() {
        return Err("it stores a key twice (two entries with one name); a checkpoint has one entry per key".into());
    }
    let mut entries = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| format!("entry {index} is unreadable: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("entry {index} has an unreadable name: {e}"))?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        if entries.insert(key.clone(), index).is_some() {
            return Err(format!("the key {key:?} appears twice"));
        }
    }
    Ok(entries)
}

/// The longest `.npy` header read: numpy writes a few dozen bytes for a float array.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The bytes of entry `index`, refused when longer than `data_bytes` of data plus the
/// longest header: nothing in a well-formed entry for the model's tensor is longer.
fn read_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    index: usize,
    key: &str,
    data_bytes: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>, String> {
    // The magic string, version, header length and header, then the data.
    let limit = 12 + MAX_HEADER_BYTES + data_bytes;
    let entry = archive
        .by_index(index)
        .map_err(|e| format!("{key:?}: the entry is unreadable: {e}"))?;
    if entry.size() > limit as u64 {
        return Err(format!(
            "{key:?}: the entry declares {} bytes; {} takes {data_bytes} bytes of data",
            entry.size(),
            what()
        ));
    }
    let mut bytes = Vec::with_capacity((entry.size() as usize).min(limit));
    entry
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{key:?}: the entry is damaged: {e}"))?;
    if bytes.len() > limit {
        return Err(format!(
            "{key:?}: the entry holds more than the {limit} bytes {} can take",
            what()
        ));
    }
    Ok(bytes)
}

/// Reads entry `index` as an array of `E` with exactly `dims`, in row-major order.
fn read_array<E: CheckpointElement, R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    index: usize,
    key: &str,
    dims: &[usize],
) -> Result<Vec<E>, String> {
    let elements: usize = dims.iter().product();
    let data_bytes = elements * E::BYTES;
    let what = || format!("a {} array of {}", E::NUMPY_NAME, format_dims(dims));
    let bytes = read_entry(archive, index, key, data_bytes, &what)?;
    let header = NpyHeader::parse(&bytes).map_err(|e| format!("{key:?}: not a valid .npy array: {e}"))?;
    let code = format!("f{}", E::BYTES);
    let little_endian = byte_order(&header.descr, &code).ok_or_else(|| {
        format!(
            "{key:?}: the array is of dtype {:?} ({}); the model's tensor is {} (\"<{code}\")",
            header.descr,
            describe_descr(&header.descr),
            E::NUMPY_NAME
        )
    })?;
    if header.shape != dims {
        return Err(format!(
            "{key:?}: the array's shape is {}; the model's tensor is {}",
            format_dims(&header.shape),
            format_dims(dims)
        ));
    }
    let data = &bytes[header.data_start..];
    if data.len() != data_bytes {
        return Err(format!(
            "{key:?}: the array's data is {} bytes; {} takes {data_bytes}",
            data.len(),
            what()
        ));
    }
    let values: Vec<E> = data
        .chunks_exact(E::BYTES)
        .map(|b| E::from_bytes(b, little_endian))
        .collect();
    Ok(if header.fortran_order {
        fortran_to_row_major(&values, dims)
    } else {
        values
    })
}

/// Reads entry `index` as a counter: an int64 scalar, as PyTorch stores
/// `num_batches_tracked`.
fn read_count<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, index: usize, key: &str) -> Result<u64, String> {
    let what = || "an int64 scalar".to_string();
    let bytes = read_entry(archive, index, key, 8, &what)?;
    let header = NpyHeader::parse(&bytes).map_err(|e| format!("{key:?}: not a valid .npy array: {e}"))?;
    let little_endian = byte_order(&header.descr, "i8").ok_or_else(|| {
        format!(
            "{key:?}: the array is of dtype {:?} ({}); the model's counter is int64 (\"<i8\")",
            header.descr,
            describe_descr(&header.descr)
        )
    })?;
    let data = &bytes[header.data_start..];
    if !(header.shape.is_empty() || header.shape == [1]) || data.len() != 8 {
        return Err(format!(
            "{key:?}: the counter has shape {} and {} bytes of data; the model's is a scalar of 8",
            format_dims(&header.shape),
            data.len()
        ));
    }
    let bytes: [u8; 8] = data.try_into().expect("checked to be 8 bytes");
    let value = if little_endian {
        i64::from_le_bytes(bytes)
    } else {
        i64::from_be_bytes(bytes)
    };
    u64::try_from(value).map_err(|_| format!("{key:?}: the counter is negative ({value})"))
}

/// Whether `descr` is the dtype `code` (`f4`, `i8`) little-endian (`Some(true)`) or
/// big-endian (`Some(false)`); `None` for any other dtype.
fn byte_order(descr: &str, code: &str) -> Option<bool> {
    match descr.split_at_checked(1)? {
        ("<", rest) if rest == code => Some(true),
        (">", rest) if rest == code => Some(false),
        _ => None,
    }
}

/// The header of a `.npy` array of plain numbers.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
    data_start: usize,
}

impl NpyHeader {
    /// Parses the magic string, the version, and the header's Python dict literal
    /// (`{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`), accepting only
    /// what numpy writes for an array of plain numbers.
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let rest = bytes
            .strip_prefix(b"\x93NUMPY")
            .ok_or("it does not start with numpy's magic string")?;
        let (&[major, _minor], rest) = rest.split_first_chunk::<2>().ok_or("it ends inside the header")?;
        let (header_len, rest, prefix) = match major {
            1 => {
                let (len, rest) = rest.split_first_chunk::<2>().ok_or("it ends inside the header")?;
                (u16::from_le_bytes(*len) as usize, rest, 10)
            }
            2 | 3 => {
                let (len, rest) = rest.split_first_chunk::<4>().ok_or("it ends inside the header")?;
                (u32::from_le_bytes(*len) as usize, rest, 12)
            }
            _ => return Err(format!("unknown .npy version {major}")),
        };
        if header_len > MAX_HEADER_BYTES || header_len > rest.len() {
            return Err(format!(
                "its header declares {header_len} bytes, more than the entry holds"
            ));
        }
        let text = std::str::from_utf8(&rest[..header_len]).map_err(|_| "its header is not text")?;
        let mut header = Self::parse_dict(text.trim_end())?;
        header.data_start = prefix + header_len;
        Ok(header)
    }

    fn parse_dict(text: &str) -> Result<Self, String> {
        let body = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or("its header is not a dict")?;
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        let mut rest = body.trim();
        while !rest.is_empty() {
            let (key, after) = parse_quoted(rest).ok_or("a key in its header is not a string")?;
            let after = after
                .trim_start()
                .strip_prefix(':')
                .ok_or("its header is not a dict")?
                .trim_start();
            rest = match key {
                "descr" => {
                    let (value, after) = parse_quoted(after).ok_or("its 'descr' is not a string")?;
                    descr = Some(value.to_string());
                    after
                }
                "fortran_order" => {
                    let (value, after) = if let Some(after) = after.strip_prefix("True") {
                        (true, after)
                    } else if let Some(after) = after.strip_prefix("False") {
                        (false, after)
                    } else {
                        return Err("its 'fortran_order' is not True or False".into());
                    };
                    fortran_order = Some(value);
                    after
                }
                "shape" => {
                    let close = after.find(')').ok_or("its 'shape' is not a tuple")?;
                    let inside = after.strip_prefix('(').ok_or("its 'shape' is not a tuple")?;
                    let dims = inside[..close - 1]
                        .split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(|d| d.parse::<usize>().map_err(|_| format!("its shape has a dim {d:?}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    shape = Some(dims);
                    &after[close + 1..]
                }
                other => return Err(format!("its header has an unknown key {other:?}")),
            };
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        Ok(Self {
            descr: descr.ok_or("its header has no 'descr'")?,
            fortran_order: fortran_order.ok_or("its header has no 'fortran_order'")?,
            shape: shape.ok_or("its header has no 'shape'")?,
            data_start: 0,
        })
    }
}

/// A quoted Python string at the start of `text` (`'…'` or `"…"`, no escapes), and
/// what follows it.
fn parse_quoted(text: &str) -> Option<(&str, &str)> {
    let quote = text.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let inner = &text[1..];
    let end = inner.find(quote)?;
    Some((&inner[..end], &inner[end + 1..]))
}

/// numpy's name for a dtype code, for error messages.
fn describe_descr(descr: &str) -> &'static str {
    match descr.trim_start_matches(['<', '>', '|', '=']) {
        "f2" => "float16",
        "f4" => "float32",
        "f8" => "float64",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "b1" => "bool",
        _ => "not a float type ferrograd loads",
    }
}

/// Formats dims as PyTorch prints a shape: `(3, 4)`, `(4,)`, `()`.
fn format_dims(dims: &[usize]) -> String {
    match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Values stored first-index-fastest, in row-major order.
fn fortran_to_row_major<E: Copy>(values: &[E], dims: &[usize]) -> Vec<E> {
    let mut fortran_strides = vec![1; dims.len()];
    for axis in 1..dims.len() {
        fortran_strides[axis] = fortran_strides[axis - 1] * dims[axis - 1];
    }
    let mut index = vec![0; dims.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(values[index.iter().zip(&fortran_strides).map(|(i, s)| i * s).sum::<usize>()]);
        for axis in (0..dims.len()).rev() {
            index[axis] += 1;
            if index[axis] < dims[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Writes a file through `write` under a temporary name beside `path`, flushes it to
/// disk and renames it over `path`; on any failure removes the temporary file and
/// leaves `path` as it was.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(BufWriter<File>) -> Result<BufWriter<File>, Error>,
) -> Result<(), Error> {
    let fail = |message: String| Error::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| fail("the path names no file".into()))?
        .to_string_lossy();
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = File::create(&temporary).map_err(|e| fail(format!("cannot create {}: {e}", temporary.display())))?;
        let writer = write(BufWriter::new(file))?;
        let file = writer
            .into_inner()
            .map_err(|e| fail(format!("cannot write {}: {}", temporary.display(), e.error())))?;
        file.sync_all()
            .map_err(|e| fail(format!("cannot flush {} to disk: {e}", temporary.display())))?;
        std::fs::rename(&temporary, path)
            .map_err(|e| fail(format!("cannot rename the written file into place: {e}")))?;
        // The rename itself reaches the disk with the directory's entry.
        if let Ok(directory) = File::open(&directory) {
            let _ = directory.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Names the checkpoint's file in an error raised while writing it.
fn with_path(error: Error, path: &Path) -> Error {
    match error {
        Error::Checkpoint { path: p, message } if p.is_empty() => Error::Checkpoint {
            path: path.display().to_string(),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_numpy_writes_parse() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
        let parsed = NpyHeader::parse_dict(header).unwrap();
        assert_eq!(
            (parsed.descr.as_str(), parsed.fortran_order, parsed.shape),
            ("<f4", false, vec![3, 4])
        );
        let parsed = NpyHeader::parse_dict("{'descr': '>f8', 'fortran_order': True, 'shape': (5,), }").unwrap();
        assert_eq!(
            (parsed.descr.as_str(), parsed.fortran_order, parsed.shape),
            (">f8", true, vec![5])
        );
        let parsed = NpyHeader::parse_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (), }").unwrap();
        assert_eq!(parsed.shape, Vec::<usize>::new());
    }

    #[test]
    fn hostile_headers_are_errors() {
        for (header, says) in [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 4), }",
                "dim",
            ),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ((3,), 4), }", "dim"),
            ("{'descr': '<f4', 'fortran_order': 1, 'shape': (3,), }", "fortran_order"),
            ("{'descr': '<f4', 'shape': (3,), }", "fortran_order"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
                "extra",
            ),
            ("['descr']", "dict"),
        ] {
            let error = NpyHeader::parse_dict(header).unwrap_err();
            assert!(error.contains(says), "{header}: {error}");
        }
    }

    #[test]
    fn fortran_order_becomes_row_major() {
        // A 2×3 matrix [[1, 2, 3], [4, 5, 6]] stored column by column.
        assert_eq!(fortran_to_row_major(&[1, 4, 2, 5, 3, 6], &[2, 3]), [1, 2, 3, 4, 5, 6]);
    }
}
