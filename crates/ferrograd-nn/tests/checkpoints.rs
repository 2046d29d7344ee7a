//! Saving and loading npz checkpoints: round trips, numpy's own files, and every kind
//! of bad file a user or an attacker can hand to `load`.

use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut};
use ferrograd_nn::prelude::*;
use ferrograd_nn::{LoadOptions, LoadReport};
use ferrograd_testing::{TestDevice, seeded_test_device};
use std::io::Write;
use std::path::PathBuf;

type Mlp = (Linear<4, 8>, ReLU, Linear<8, 3>);

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-checkpoints-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an npz of the given entries (name, raw `.npy` bytes), stored or deflated.
fn write_npz(path: &std::path::Path, entries: &[(&str, Vec<u8>)], deflate: bool) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    for (name, bytes) in entries {
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(name.to_string(), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A version 1.0 `.npy` file with this header dict and raw data, as numpy lays it out.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut text = header.to_string();
    while !(10 + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((text.len() as u16).to_le_bytes());
    bytes.extend(text.as_bytes());
    bytes.extend(data);
    bytes
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The MLP's four arrays as valid entries, with one replaced.
fn mlp_entries(replace: Option<(&'static str, Vec<u8>)>) -> Vec<(&'static str, Vec<u8>)> {
    let array = |dims: &str, n: usize| {
        npy(
            &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}"),
            &f32_bytes(&vec![0.5; n]),
        )
    };
    let mut entries = vec![
        ("0.weight.npy", array("(8, 4)", 32)),
        ("0.bias.npy", array("(8,)", 8)),
        ("2.weight.npy", array("(3, 8)", 24)),
        ("2.bias.npy", array("(3,)", 3)),
    ];
    if let Some((name, bytes)) = replace {
        entries.iter_mut().find(|(n, _)| *n == name).unwrap().1 = bytes;
    }
    entries
}

fn all_values<M: VisitParameters<f32, TestDevice>>(model: &M) -> Vec<(String, Vec<f32>)> {
    struct Values(Vec<(String, Vec<f32>)>);
    impl ParameterVisitor<f32, TestDevice> for Values {
        fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, f32, TestDevice>) -> Result<(), Error> {
            self.0.push((name.to_string(), parameter.as_vec()));
            Ok(())
        }
    }
    let mut values = Values(Vec::new());
    model.visit_parameters(&mut values).unwrap();
    values.0
}

#[test]
fn save_then_load_is_bit_exact_and_keeps_parameter_ids() {
    let dir = scratch("round_trip");
    let dev = seeded_test_device(0);
    let model = dev.build_module::<Mlp, f32>();
    model.save(dir.join("model.npz")).unwrap();

    let mut other = dev.build_module::<Mlp, f32>();
    let id = other.0.weight.id();
    other.load(dir.join("model.npz")).unwrap();
    let (saved, loaded) = (all_values(&model), all_values(&other));
    for ((name, a), (_, b)) in saved.iter().zip(&loaded) {
        let (a, b): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(a, b, "{name}");
    }
    assert_eq!(
        other.0.weight.id(),
        id,
        "loading keeps the parameter's id (its gradients and optimizer state)"
    );

    // f64 too, and the file is what numpy's savez writes: entries `key.npy`.
    let model64 = dev.build_module::<Mlp, f64>();
    model64.save(dir.join("model64.npz")).unwrap();
    let mut other64 = dev.build_module::<Mlp, f64>();
    other64.load(dir.join("model64.npz")).unwrap();
    assert_eq!(other64.2.weight.as_vec(), model64.2.weight.as_vec());
    let archive = zip::ZipArchive::new(std::fs::File::open(dir.join("model.npz")).unwrap()).unwrap();
    let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["0.bias.npy", "0.weight.npy", "2.bias.npy", "2.weight.npy"]);
}

#[test]
fn arrays_numpy_writes_load_in_either_byte_order_and_memory_order() {
    let dir = scratch("numpy_layouts");
    let dev = seeded_test_device(0);
    let weight: Vec<f32> = (0..32).map(|i| i as f32).collect();
    // The same 8×4 weight column by column (Fortran order), and a big-endian bias.
    let fortran: Vec<f32> = (0..4).flat_map(|c| (0..8).map(move |r| (r * 4 + c) as f32)).collect();
    let big_endian: Vec<u8> = (0..8).flat_map(|i| (i as f32 * 0.25).to_be_bytes()).collect();
    let path = dir.join("layouts.npz");
    write_npz(
        &path,
        &mlp_entries(Some((
            "0.weight.npy",
            npy(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (8, 4), }",
                &f32_bytes(&fortran),
            ),
        ))),
        true,
    );
    let mut model = dev.build_module::<Mlp, f32>();
    model.load(&path).unwrap();
    assert_eq!(model.0.weight.as_vec(), weight);

    let mut entries = mlp_entries(None);
    entries[1].1 = npy("{'descr': '>f4', 'fortran_order': False, 'shape': (8,), }", &big_endian);
    write_npz(&path, &entries, false);
    model.load(&path).unwrap();
    assert_eq!(
        model.0.bias.as_ref().unwrap().as_vec(),
        (0..8).map(|i| i as f32 * 0.25).collect::<Vec<_>>()
    );
}

/// Loads `entries` into a fresh MLP and returns the error's text; the model must be
/// unchanged by the failed load.
fn load_error(test: &str, entries: &[(&str, Vec<u8>)], deflate: bool) -> String {
    let dir = scratch(test);
    let path = dir.join("bad.npz");
    write_npz(&path, entries, deflate);
    let dev = seeded_test_device(1);
    let mut model = dev.build_module::<Mlp, f32>();
    let before = all_values(&model);
    let error = model.load(&path).unwrap_err().to_string();
    assert_eq!(all_values(&model), before, "a failed load changed the model");
    assert!(error.contains("bad.npz"), "the error names the file: {error}");
    error
}

#[test]
fn missing_and_unexpected_keys_are_listed() {
    let mut entries = mlp_entries(None);
    entries.remove(3);
    entries.push(("2.weights.npy", entries[2].1.clone()));
    let error = load_error("keys", &entries, false);
    assert!(
        error.contains("missing [\"2.bias\"]") && error.contains("unexpected [\"2.weights\"]"),
        "{error}"
    );

    // Not strict: the matching keys load, and the others are reported.
    let dir = scratch("keys_lenient");
    let path = dir.join("partial.npz");
    write_npz(&path, &entries, false);
    let mut model = seeded_test_device(2).build_module::<Mlp, f32>();
    let bias = model.2.bias.as_ref().unwrap().as_vec();
    let report = model.load_with(&path, LoadOptions { strict: false }).unwrap();
    assert_eq!(
        report,
        LoadReport {
            missing_keys: vec!["2.bias".into()],
            unexpected_keys: vec!["2.weights".into()]
        }
    );
    assert_eq!(model.0.weight.as_vec(), vec![0.5; 32]);
    assert_eq!(model.2.bias.as_ref().unwrap().as_vec(), bias);
}

#[test]
fn a_wrong_shape_or_dtype_names_the_key_and_both() {
    let wrong_shape = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), }",
        &f32_bytes(&[0.0; 32]),
    );
    let error = load_error("shape", &mlp_entries(Some(("0.weight.npy", wrong_shape))), false);
    assert!(
        error.contains("\"0.weight\"") && error.contains("(4, 8)") && error.contains("(8, 4)"),
        "{error}"
    );

    let float64 = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (8,), }", &[0u8; 64]);
    let error = load_error("dtype", &mlp_entries(Some(("0.bias.npy", float64))), false);
    assert!(
        error.contains("\"0.bias\"") && error.contains("float64") && error.contains("float32"),
        "{error}"
    );

    let int64 = npy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", &[0u8; 24]);
    let error = load_error("int", &mlp_entries(Some(("2.bias.npy", int64))), false);
    assert!(error.contains("\"2.bias\"") && error.contains("int64"), "{error}");
}

#[test]
fn damaged_and_hostile_files_are_errors_not_panics_or_huge_allocations() {
    // An array whose data stops short.
    let short = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
        &f32_bytes(&[1.0, 2.0]),
    );
    let error = load_error("short", &mlp_entries(Some(("2.bias.npy", short))), false);
    assert!(error.contains("\"2.bias\"") && error.contains("8 bytes"), "{error}");

    // A shape of 10¹² × 10¹² elements: rejected by its shape, nothing allocated for it.
    let huge = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }",
        &[],
    );
    let error = load_error("huge_shape", &mlp_entries(Some(("2.weight.npy", huge))), false);
    assert!(
        error.contains("\"2.weight\"") && error.contains("(1000000000000, 1000000000000)"),
        "{error}"
    );

    // A zip bomb: a deflated entry that inflates to 20 MB, read no further than the
    // few hundred bytes the parameter can take.
    let mut bomb = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", &[]);
    bomb.resize(20_000_000, 0);
    let error = load_error("bomb", &mlp_entries(Some(("2.bias.npy", bomb))), true);
    assert!(error.contains("\"2.bias\"") && error.contains("bytes"), "{error}");

    // A header that is not numpy's, and a header length past the entry's end.
    let error = load_error(
        "not_npy",
        &mlp_entries(Some(("0.bias.npy", b"PK\x03\x04 garbage".to_vec()))),
        false,
    );
    assert!(error.contains("\"0.bias\"") && error.contains("magic"), "{error}");
    let mut long_header = b"\x93NUMPY\x02\x00".to_vec();
    long_header.extend(u32::MAX.to_le_bytes());
    let error = load_error("long_header", &mlp_entries(Some(("0.bias.npy", long_header))), false);
    assert!(error.contains("\"0.bias\"") && error.contains("header"), "{error}");

    // A truncated file and an empty one.
    let dir = scratch("truncated");
    let path = dir.join("model.npz");
    seeded_test_device(0).build_module::<Mlp, f32>().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut model = seeded_test_device(0).build_module::<Mlp, f32>();
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let error = model.load(&path).unwrap_err().to_string();
        assert!(error.contains("model.npz"), "cut at {cut}: {error}");
    }
    let error = model.load(dir.join("absent.npz")).unwrap_err().to_string();
    assert!(error.contains("absent.npz") && error.contains("cannot open"), "{error}");
}

#[test]
fn a_key_stored_twice_is_an_error() {
    // zip refuses to write a name twice, so the second name is patched in the bytes.
    let dir = scratch("duplicate");
    let path = dir.join("twice.npz");
    let mut entries = mlp_entries(None);
    entries.push(("2.biaz.npy", entries[3].1.clone()));
    write_npz(&path, &entries, false);
    let bytes = std::fs::read(&path).unwrap();
    let mut patched_bytes = bytes.clone();
    let needle = b"2.biaz.npy";
    let mut at = 0;
    while let Some(found) = patched_bytes[at..].windows(needle.len()).position(|w| w == needle) {
        patched_bytes[at + found + 5] = b's';
        at += found + needle.len();
    }
    std::fs::write(&path, &patched_bytes).unwrap();
    let mut model = seeded_test_device(0).build_module::<Mlp, f32>();
    let error = model.load(&path).unwrap_err().to_string();
    assert!(error.contains("twice.npz") && error.contains("a key twice"), "{error}");
}

/// A model whose second parameter cannot be read: saving it fails half-way through.
struct FailsMidway(Built<Mlp, f32, TestDevice>);

impl VisitParameters<f32, TestDevice> for FailsMidway {
    fn visit_parameters<V: ParameterVisitor<f32, TestDevice>>(&self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit("0.weight", &self.0.0.weight)?;
        Err(Error::InvalidArgument {
            op: "test",
            message: "injected failure after the first parameter".into(),
        })
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f32, TestDevice>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.0.visit_parameters_mut(visitor)
    }
}

#[test]
fn a_failed_save_leaves_the_previous_checkpoint_whole() {
    let dir = scratch("atomic");
    let path = dir.join("model.npz");
    let dev = seeded_test_device(0);
    let model = dev.build_module::<Mlp, f32>();
    model.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    let failing = FailsMidway(dev.build_module::<Mlp, f32>());
    let error = failing.save(&path).unwrap_err().to_string();
    assert!(error.contains("injected failure"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the old checkpoint changed");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["model.npz"], "a temporary file was left behind");

    // And a save into a folder that does not exist fails, naming the path.
    let error = model
        .save(dir.join("no/such/folder/model.npz"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no/such/folder"), "{error}");
}
