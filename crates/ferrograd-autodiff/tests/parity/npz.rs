//! Reading a fixture: an npz (zip of .npy files) into named arrays.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The elements of one array, in C (row-major) order.
#[derive(Clone, Debug)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    /// Indices (PyTorch's `int64`).
    I64(Vec<i64>),
    U8(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Array {
    pub fn dtype_name(&self) -> &'static str {
        match self.data {
            Data::F32(_) => "f32",
            Data::F64(_) => "f64",
            Data::Bool(_) => "bool",
            Data::I64(_) => "i64",
            Data::U8(_) => "u8",
        }
    }
}

/// Every array of the npz at `path`, by name without the `.npy`.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Array>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip: {e}"))?;
    let mut arrays = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| format!("zip entry {index}: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("zip entry {index}: {e}"))?
            .into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| format!("{name}: {e}"))?;
        let key = name
            .strip_suffix(".npy")
            .ok_or_else(|| format!("entry `{name}` is not an .npy"))?;
        arrays.insert(key.to_string(), read_npy(&bytes).map_err(|e| format!("{name}: {e}"))?);
    }
    Ok(arrays)
}

fn read_npy(bytes: &[u8]) -> Result<Array, String> {
    let npy = npyz::NpyFile::new(bytes).map_err(|e| e.to_string())?;
    if npy.order() != npyz::Order::C {
        return Err("Fortran-order array (the generator writes C order)".into());
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = npy.dtype().descr();
    let err = |e: std::io::Error| e.to_string();
    let data = match descr.trim_matches('\'') {
        "<f4" => Data::F32(npy.into_vec::<f32>().map_err(err)?),
        "<f8" => Data::F64(npy.into_vec::<f64>().map_err(err)?),
        "|b1" => Data::Bool(npy.into_vec::<bool>().map_err(err)?),
        "<i8" => Data::I64(npy.into_vec::<i64>().map_err(err)?),
        "|u1" => Data::U8(npy.into_vec::<u8>().map_err(err)?),
        other => return Err(format!("unsupported dtype {other}")),
    };
    Ok(Array { shape, data })
}
