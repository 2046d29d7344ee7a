//! Whether a committed fixture still says what a regenerated one says.
//!
//! Byte equality is too strict a test: the same torch on another CPU takes other code
//! paths (MKL's GEMM kernels, ATen's vectorised transcendental functions and reduction
//! orders), so its floats land up to a few hundred ULP away (31 of the 718 committed
//! fixtures, 1 to 204 ULP, when regenerated on another machine). Those files are not
//! stale: they are as good a reference as the committed ones. So a fixture is stale
//! only when its arrays differ in name, dtype, shape or layout, when an integer, bool
//! or `meta` (JSON) array differs at all, or when a float differs by more than
//! [`FRACTION`] of the tests' tolerance ([`TEST_F32`], [`TEST_F64`]). NaN matches NaN
//! (any payload), an infinity only the same infinity.
//!
//! Why the tolerance is a fraction of the tests' rather than a number of ULP: the large
//! ULP counts come from results that cancel to near zero (204 ULP of an f64 of 1.8e-3
//! is 4e-17; 1.4 million ULP of one of 3e-6, with ATen's scalar kernels, is 6e-16),
//! where only an absolute bound makes sense, and the f32 tests allow just 84 to 168 ULP
//! away from zero, so "a few hundred ULP" would not be tighter than the tests. The
//! tests' own form, `abs + rel·|x|`, handles both; measured across MKL code paths
//! (`MKL_CBWR`) and ATen CPU capabilities (`ATEN_CPU_CAPABILITY`), the largest
//! cross-CPU difference was 8% of it (an f32 matmul gradient, 96 ULP of -0.011).
//! [`FRACTION`] = 1/4 leaves 3× headroom above that, and a fixture that passes moves a
//! test's verdict by at most a quarter of its tolerance; a real change (inputs, a
//! formula, torch's version in `meta`) is far larger.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Cursor, Read};

use npyz::{DType, NpyFile, Order, TypeChar};

/// A tolerance of the form `|a - b| <= abs + rel·max(|a|, |b|)`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Relative to the larger magnitude of the two values.
    pub rel: f64,
    /// Absolute: what counts for results near zero.
    pub abs: f64,
}

/// The f32 tolerance of the Rust parity tests (`F32_TOL` in
/// `crates/ferrograd-autodiff/tests/parity.rs`; keep in step).
pub const TEST_F32: Tolerance = Tolerance { rel: 1e-5, abs: 1e-6 };
/// The f64 tolerance of the Rust parity tests (`F64_TOL` there).
pub const TEST_F64: Tolerance = Tolerance { rel: 1e-10, abs: 1e-12 };
/// The part of the tests' tolerance by which a committed float may differ from the
/// regenerated one and still count as up to date (see the module's docs).
pub const FRACTION: f64 = 0.25;

impl Tolerance {
    /// What this tolerance allows between `a` and `b`.
    fn allowed(self, a: f64, b: f64) -> f64 {
        FRACTION * (self.abs + self.rel * a.abs().max(b.abs()))
    }

    /// The relative part of the check (this tolerance times [`FRACTION`]) in ULP of a
    /// float with `mantissa_bits` explicit bits: from its value at the top of a binade
    /// to its value at the bottom.
    fn ulp_range(self, mantissa_bits: i32) -> (f64, f64) {
        let at_top = FRACTION * self.rel * 2f64.powi(mantissa_bits);
        (at_top, 2.0 * at_top)
    }
}

/// For the output: what counts as stale, and the check's tolerance beside the tests'.
pub fn describe() -> String {
    let line = |name: &str, test: Tolerance, mantissa_bits: u32| {
        let (lo, hi) = test.ulp_range(mantissa_bits as i32);
        format!(
            "  {name}: |diff| <= {:e} + {:e}·|x| ({} to {} ULP of |x|); the tests allow {:e} + {:e}·|x|",
            FRACTION * test.abs,
            FRACTION * test.rel,
            round_ulps(lo),
            round_ulps(hi),
            test.abs,
            test.rel
        )
    };
    format!(
        "a fixture is stale if its arrays, dtypes, shapes, integers, bools or metadata differ, \
         or a float by more than 1/{} of the Rust tests' tolerance:\n{}\n{}",
        (1.0 / FRACTION).round(),
        line("f32", TEST_F32, f32::MANTISSA_DIGITS - 1),
        line("f64", TEST_F64, f64::MANTISSA_DIGITS - 1),
    )
}

/// A ULP count for the output: whole below 1000, else two significant digits.
fn round_ulps(ulps: f64) -> String {
    if ulps < 1000.0 {
        format!("{ulps:.0}")
    } else {
        format!("{ulps:.1e}")
    }
}

/// How a committed fixture compares with the regenerated one.
#[derive(Debug)]
pub enum Verdict {
    /// Byte for byte the same.
    Identical,
    /// The same arrays, floats within tolerance; the farthest float, if any differs.
    Close(Option<Worst>),
    /// Stale: why, naming the array and, for values, the worst element.
    Stale(String),
}

/// The float of a fixture farthest from its regenerated value, relative to the
/// tolerance.
#[derive(Clone, Debug)]
pub struct Worst {
    /// The array's name (`output`, `grad_input0`, …).
    pub array: String,
    /// The element's index, one entry per axis.
    pub index: Vec<usize>,
    /// The committed value, printed in its own type (so that it reads back exactly).
    pub committed: String,
    /// The regenerated value, printed likewise.
    pub fresh: String,
    /// How many representable values apart the two are; `None` when one is NaN or
    /// infinite and the other not.
    pub ulps: Option<u64>,
    /// `|committed - fresh|` divided by what the check allows there (> 1: stale).
    pub excess: f64,
}

impl fmt::Display for Worst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{:?}: committed {}, regenerated {}",
            self.array, self.index, self.committed, self.fresh
        )?;
        if let Some(ulps) = self.ulps {
            write!(f, ", {ulps} ULP apart")?;
        }
        if self.excess >= 100.0 {
            write!(f, ", {:.0}× the check's tolerance", self.excess)
        } else if self.excess > 1.0 {
            write!(f, ", {:.1}× the check's tolerance", self.excess)
        } else {
            write!(f, ", {:.0}% of the check's tolerance", 100.0 * self.excess)
        }
    }
}

/// Compares two npz files, the committed one first. Fails only when `fresh`, which
/// the generator just wrote, cannot be read; an unreadable committed file is stale.
/// A stale verdict names every array that differs, so that a changed `meta` shows
/// beside the values it changed.
pub fn compare_npz(committed: &[u8], fresh: &[u8]) -> Result<Verdict, String> {
    // Most files are equal byte for byte; no need to parse those.
    if committed == fresh {
        return Ok(Verdict::Identical);
    }
    let new_entries = read_npz(fresh).map_err(|e| format!("the regenerated fixture: {e}"))?;
    let old_entries = match read_npz(committed) {
        Ok(entries) => entries,
        Err(e) => return Ok(Verdict::Stale(format!("cannot read it: {e}"))),
    };

    let mut problems = Vec::new();
    let missing = names_not_in(&new_entries, &old_entries);
    if !missing.is_empty() {
        problems.push(format!("arrays {missing:?} not committed"));
    }
    let extra = names_not_in(&old_entries, &new_entries);
    if !extra.is_empty() {
        problems.push(format!("arrays {extra:?} no longer written"));
    }
    let mut worst: Option<Worst> = None;
    for (name, new_bytes) in &new_entries {
        let Some(old_bytes) = old_entries.get(name) else {
            continue;
        };
        match compare_array(name, old_bytes, new_bytes)? {
            Verdict::Stale(why) => problems.push(why),
            Verdict::Close(Some(w)) if worst.as_ref().is_none_or(|old| w.excess > old.excess) => {
                worst = Some(w);
            }
            Verdict::Identical | Verdict::Close(_) => {}
        }
    }
    Ok(if problems.is_empty() {
        Verdict::Close(worst)
    } else {
        Verdict::Stale(problems.join("; "))
    })
}

/// Compares one array of the two files, as [`compare_npz`] does files.
fn compare_array(name: &str, old_bytes: &[u8], new_bytes: &[u8]) -> Result<Verdict, String> {
    let new = NpyFile::new(new_bytes).map_err(|e| format!("`{name}` regenerated: {e}"))?;
    let old = match NpyFile::new(old_bytes) {
        Ok(old) => old,
        Err(e) => return Ok(Verdict::Stale(format!("`{name}`: cannot read it: {e}"))),
    };
    if old.dtype() != new.dtype() {
        return Ok(Verdict::Stale(format!(
            "`{name}`: dtype {} committed, {} regenerated",
            old.dtype().descr(),
            new.dtype().descr()
        )));
    }
    if old.shape() != new.shape() {
        return Ok(Verdict::Stale(format!(
            "`{name}`: shape {:?} committed, {:?} regenerated",
            old.shape(),
            new.shape()
        )));
    }
    if old.order() != new.order() {
        return Ok(Verdict::Stale(format!(
            "`{name}`: C order in one file, Fortran order in the other"
        )));
    }
    let layout = Layout {
        name,
        shape: new.shape().iter().map(|&d| d as usize).collect(),
        fortran: new.order() == Order::Fortran,
    };
    let worst = match float_width(&new.dtype()) {
        Some(4) => compare_floats::<f32>(&layout, old, new, TEST_F32)?,
        Some(8) => compare_floats::<f64>(&layout, old, new, TEST_F64)?,
        _ => {
            let dtype = new.dtype();
            return Ok(
                match compare_exact(&layout, &dtype, old.into_inner(), new.into_inner()) {
                    Some(why) => Verdict::Stale(why),
                    None => Verdict::Close(None),
                },
            );
        }
    };
    Ok(match worst {
        Some(w) if w.excess > 1.0 => Verdict::Stale(format!("`{name}` out of tolerance, worst at {w}")),
        worst => Verdict::Close(worst),
    })
}

/// What locates an element of an array for a message.
struct Layout<'a> {
    name: &'a str,
    shape: Vec<usize>,
    fortran: bool,
}

impl Layout<'_> {
    /// The index, one entry per axis, of the `flat`-th element stored.
    fn unravel(&self, mut flat: usize) -> Vec<usize> {
        let mut index = vec![0; self.shape.len()];
        let axes: Vec<usize> = if self.fortran {
            (0..self.shape.len()).collect()
        } else {
            (0..self.shape.len()).rev().collect()
        };
        for axis in axes {
            let dim = self.shape[axis].max(1);
            index[axis] = flat % dim;
            flat /= dim;
        }
        index
    }
}

/// The names in `a` that `b` lacks.
fn names_not_in<'a>(a: &'a BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<&'a str> {
    a.keys().filter(|k| !b.contains_key(*k)).map(String::as_str).collect()
}

/// The entries of an npz, by name without `.npy`, as npy bytes.
fn read_npz(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a zip: {e}"))?;
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("zip entry {i}: {e}"))?;
        let name = entry.name().map_err(|e| format!("zip entry {i}: {e}"))?.into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| format!("{name}: {e}"))?;
        let key = name
            .strip_suffix(".npy")
            .ok_or_else(|| format!("entry `{name}` is not an .npy"))?;
        entries.insert(key.to_string(), data);
    }
    Ok(entries)
}

/// The byte width of a plain float dtype (`<f4`, `>f8`, …); `None` for anything else.
fn float_width(dtype: &DType) -> Option<u64> {
    match dtype {
        DType::Plain(ty) if ty.type_char() == TypeChar::Float => Some(ty.size_field()),
        _ => None,
    }
}

/// The float types fixtures hold, as far as comparing them needs.
trait Float: Copy + fmt::Debug + npyz::Deserialize {
    fn to_f64(self) -> f64;
    /// The bits mapped to integers that order like the floats, so that a difference
    /// counts the representable values between two floats; -0 and +0 both map to 0.
    fn ordered(self) -> i128;
}

impl Float for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn ordered(self) -> i128 {
        let bits = i128::from(self.to_bits() as i32);
        if bits < 0 { i128::from(i32::MIN) - bits } else { bits }
    }
}

impl Float for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn ordered(self) -> i128 {
        let bits = i128::from(self.to_bits() as i64);
        if bits < 0 { i128::from(i64::MIN) - bits } else { bits }
    }
}

/// The element farthest from its regenerated value relative to what `tol` allows
/// (`excess` > 1: stale), or `None` when all are equal.
fn compare_floats<T: Float>(
    layout: &Layout<'_>,
    old: NpyFile<&[u8]>,
    new: NpyFile<&[u8]>,
    tol: Tolerance,
) -> Result<Option<Worst>, String> {
    let name = layout.name;
    let old = old.into_vec::<T>().map_err(|e| format!("`{name}` committed: {e}"))?;
    let new = new.into_vec::<T>().map_err(|e| format!("`{name}` regenerated: {e}"))?;
    if old.len() != new.len() {
        return Err(format!("`{name}`: {} elements against {}", old.len(), new.len()));
    }
    let mut worst: Option<(usize, Option<u64>, f64)> = None;
    for (i, (&a, &b)) in old.iter().zip(&new).enumerate() {
        let (a64, b64) = (a.to_f64(), b.to_f64());
        let (ulps, excess) = if a64.is_finite() && b64.is_finite() {
            let ulps = u64::try_from((a.ordered() - b.ordered()).unsigned_abs()).unwrap_or(u64::MAX);
            (Some(ulps), (a64 - b64).abs() / tol.allowed(a64, b64))
        } else if (a64.is_nan() && b64.is_nan()) || a64 == b64 {
            (Some(0), 0.0)
        } else {
            (None, f64::INFINITY)
        };
        if ulps != Some(0) && worst.is_none_or(|(_, _, e)| excess > e) {
            worst = Some((i, ulps, excess));
        }
    }
    Ok(worst.map(|(i, ulps, excess)| Worst {
        array: name.to_string(),
        index: layout.unravel(i),
        committed: format!("{:?}", old[i]),
        fresh: format!("{:?}", new[i]),
        ulps,
        excess,
    }))
}

/// Why two arrays compared exactly (bool, integer, `meta`'s UTF-8 JSON) differ, or
/// `None` when their data is equal. `meta` is shown around its first difference,
/// others by element.
fn compare_exact(layout: &Layout<'_>, dtype: &DType, old: &[u8], new: &[u8]) -> Option<String> {
    if old == new {
        return None;
    }
    let name = layout.name;
    let at = old
        .iter()
        .zip(new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    if name == "meta" {
        let around = |bytes: &[u8]| {
            let start = at.saturating_sub(40).min(bytes.len());
            let end = (at + 40).min(bytes.len());
            String::from_utf8_lossy(&bytes[start..end]).into_owned()
        };
        return Some(format!(
            "`meta` differs from byte {at} on: committed …{}…, regenerated …{}…",
            around(old),
            around(new)
        ));
    }
    let size = dtype.num_bytes().unwrap_or(1).max(1);
    let element = at / size;
    let show = |bytes: &[u8]| match bytes.get(element * size..(element + 1) * size) {
        Some(item) => show_item(dtype, item),
        None => String::from("(none)"),
    };
    Some(format!(
        "`{name}` (compared exactly) differs at {:?}: committed {}, regenerated {}",
        layout.unravel(element),
        show(old),
        show(new)
    ))
}

/// One element of a bool or integer array, printed; bytes in hex for other dtypes.
fn show_item(dtype: &DType, item: &[u8]) -> String {
    let little = match dtype {
        DType::Plain(ty) => !matches!(ty.endianness(), npyz::Endianness::Big),
        _ => true,
    };
    let as_u64 = || {
        let mut bytes = item.to_vec();
        if !little {
            bytes.reverse();
        }
        bytes.resize(8, 0);
        u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    };
    match dtype {
        DType::Plain(ty) if ty.type_char() == TypeChar::Bool => (item != [0]).to_string(),
        DType::Plain(ty) if ty.type_char() == TypeChar::Uint && item.len() <= 8 => as_u64().to_string(),
        DType::Plain(ty) if ty.type_char() == TypeChar::Int && item.len() <= 8 => {
            // Sign-extend from the item's width.
            let shift = 64 - 8 * item.len() as u32;
            (((as_u64() << shift) as i64) >> shift).to_string()
        }
        _ => item.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An npy (format 1.0, as numpy writes it) of `descr`, `shape` and raw `data`.
    fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        // Magic (6) + version (2) + length (2) + header + '\n', padded to 64 bytes.
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f32s(shape: &[usize], values: &[f32]) -> Vec<u8> {
        npy(
            "<f4",
            shape,
            &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
    }

    fn f64s(shape: &[usize], values: &[f64]) -> Vec<u8> {
        npy(
            "<f8",
            shape,
            &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
    }

    fn i64s(shape: &[usize], values: &[i64]) -> Vec<u8> {
        npy(
            "<i8",
            shape,
            &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
    }

    fn meta(json: &str) -> Vec<u8> {
        npy("|u1", &[json.len()], json.as_bytes())
    }

    /// An npz of `(name, npy)` entries, stored, in the order given.
    fn npz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            zip.start_file(format!("{name}.npy"), options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn stale(verdict: Verdict) -> String {
        match verdict {
            Verdict::Stale(why) => why,
            other => panic!("expected stale, got {other:?}"),
        }
    }

    fn close(verdict: Verdict) -> Option<Worst> {
        match verdict {
            Verdict::Close(worst) => worst,
            other => panic!("expected close, got {other:?}"),
        }
    }

    const META: &str = r#"{"case":"exp","torch":"2.15.0"}"#;

    fn fixture(output: Vec<u8>) -> Vec<u8> {
        npz(&[
            ("meta", meta(META)),
            ("input0", f32s(&[2], &[0.5, 1.5])),
            ("output", output),
        ])
    }

    #[test]
    fn identical_bytes_are_identical() {
        let a = fixture(f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]));
        assert!(matches!(compare_npz(&a, &a.clone()), Ok(Verdict::Identical)));
    }

    #[test]
    fn one_ulp_apart_matches() {
        let x = 1.2345_f32;
        let a = fixture(f32s(&[2, 2], &[1.0, x, 3.0, 4.0]));
        let b = fixture(f32s(&[2, 2], &[1.0, f32::from_bits(x.to_bits() + 1), 3.0, 4.0]));
        let worst = close(compare_npz(&a, &b).unwrap()).expect("one element differs");
        assert_eq!(
            (worst.array.as_str(), worst.index.as_slice(), worst.ulps),
            ("output", &[0, 1][..], Some(1))
        );
        assert!(worst.excess < 0.1, "{worst}");

        let y = -0.75_f64;
        let a = npz(&[("output", f64s(&[1], &[y]))]);
        let b = npz(&[("output", f64s(&[1], &[f64::from_bits(y.to_bits() + 1)]))]);
        assert_eq!(close(compare_npz(&a, &b).unwrap()).unwrap().ulps, Some(1));
    }

    #[test]
    fn far_apart_is_stale_and_says_where() {
        let a = fixture(f32s(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
        let b = fixture(f32s(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.001, 5.0]));
        let why = stale(compare_npz(&a, &b).unwrap());
        for part in [
            "`output`",
            "output[1, 1]",
            "committed 4.0",
            "regenerated 4.001",
            "ULP apart",
        ] {
            assert!(why.contains(part), "`{part}` not in: {why}");
        }
    }

    #[test]
    fn tolerance_is_a_fraction_of_the_tests() {
        // Just inside and just outside a quarter of the f32 tests' tolerance at 1.0.
        let allowed = FRACTION * (TEST_F32.abs + TEST_F32.rel);
        let inside = fixture(f32s(&[1], &[1.0 + 0.9 * allowed as f32]));
        let outside = fixture(f32s(&[1], &[1.0 + 1.1 * allowed as f32]));
        let base = fixture(f32s(&[1], &[1.0]));
        close(compare_npz(&base, &inside).unwrap());
        stale(compare_npz(&base, &outside).unwrap());
        // Near zero the absolute part counts, however many ULP apart the two are.
        let tiny = fixture(f32s(&[1], &[1e-9]));
        let zero = fixture(f32s(&[1], &[0.0]));
        let worst = close(compare_npz(&zero, &tiny).unwrap()).unwrap();
        assert!(worst.ulps.unwrap() > 100_000_000, "{worst}");
    }

    #[test]
    fn nan_matches_nan_and_nothing_else() {
        let quiet = f32::NAN;
        let other_payload = f32::from_bits(quiet.to_bits() | 1);
        let a = fixture(f32s(&[2], &[quiet, f32::INFINITY]));
        let b = fixture(f32s(&[2], &[other_payload, f32::INFINITY]));
        assert!(close(compare_npz(&a, &b).unwrap()).is_none());
        let c = fixture(f32s(&[2], &[1.0, f32::INFINITY]));
        assert!(stale(compare_npz(&a, &c).unwrap()).contains("output[0]"));
        let d = fixture(f32s(&[2], &[quiet, f32::NEG_INFINITY]));
        assert!(stale(compare_npz(&a, &d).unwrap()).contains("output[1]"));
        // -0 and +0 are equal values.
        let e = fixture(f32s(&[2], &[-0.0, 1.0]));
        let f = fixture(f32s(&[2], &[0.0, 1.0]));
        assert!(close(compare_npz(&e, &f).unwrap()).is_none());
    }

    #[test]
    fn other_arrays_are_stale() {
        let a = fixture(f32s(&[2], &[1.0, 2.0]));
        let b = npz(&[("meta", meta(META)), ("output", f32s(&[2], &[1.0, 2.0]))]);
        let why = stale(compare_npz(&a, &b).unwrap());
        assert!(why.contains("input0"), "{why}");
        let why = stale(compare_npz(&b, &a).unwrap());
        assert!(why.contains("input0"), "{why}");
    }

    #[test]
    fn shape_and_dtype_must_match() {
        let a = fixture(f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]));
        let b = fixture(f32s(&[4], &[1.0, 2.0, 3.0, 4.0]));
        assert!(stale(compare_npz(&a, &b).unwrap()).contains("shape"));
        let c = fixture(f64s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]));
        assert!(stale(compare_npz(&a, &c).unwrap()).contains("dtype"));
    }

    #[test]
    fn integers_bools_and_meta_compare_exactly() {
        let a = npz(&[("meta", meta(META)), ("input1", i64s(&[3], &[0, 2, 1]))]);
        let b = npz(&[("meta", meta(META)), ("input1", i64s(&[3], &[0, 2, -1]))]);
        let why = stale(compare_npz(&a, &b).unwrap());
        assert!(
            why.contains("input1") && why.contains("[2]") && why.contains("committed 1, regenerated -1"),
            "{why}"
        );

        let m = npz(&[
            ("meta", meta(r#"{"case":"exp","torch":"2.16.0"}"#)),
            ("input1", i64s(&[3], &[0, 2, 1])),
        ]);
        let why = stale(compare_npz(&a, &m).unwrap());
        assert!(why.contains("`meta`") && why.contains("2.16.0"), "{why}");

        let t = npz(&[("mask", npy("|b1", &[2], &[1, 0]))]);
        let f = npz(&[("mask", npy("|b1", &[2], &[1, 1]))]);
        let why = stale(compare_npz(&t, &f).unwrap());
        assert!(
            why.contains("`mask`") && why.contains("[1]: committed false, regenerated true"),
            "{why}"
        );
    }

    #[test]
    fn equal_values_in_another_zip_layout_match() {
        let a = npz(&[("meta", meta(META)), ("output", f32s(&[1], &[1.0]))]);
        let b = npz(&[("output", f32s(&[1], &[1.0])), ("meta", meta(META))]);
        assert_ne!(a, b);
        assert!(close(compare_npz(&a, &b).unwrap()).is_none());
    }

    #[test]
    fn unreadable_files() {
        let good = fixture(f32s(&[1], &[1.0]));
        assert!(stale(compare_npz(b"not a zip", &good).unwrap()).contains("cannot read"));
        assert!(compare_npz(&good, b"not a zip").is_err());
    }

    #[test]
    fn ulp_distance_crosses_zero() {
        let tiny = f32::from_bits(1);
        assert_eq!((tiny.ordered() - (-tiny).ordered()).unsigned_abs(), 2);
        assert_eq!((0.0f64.ordered() - (-0.0f64).ordered()).unsigned_abs(), 0);
        assert_eq!((1.0f64.ordered() - 1.0f64.next_up().ordered()).unsigned_abs(), 1);
    }

    #[test]
    fn the_output_states_the_tolerance() {
        let text = describe();
        assert!(
            text.contains("1/4") && text.contains("f32") && text.contains("f64"),
            "{text}"
        );
    }
}
