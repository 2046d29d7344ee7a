//! safetensors checkpoints (feature `safetensors`): round trips and bad files.
#![cfg(feature = "safetensors")]

use ferrograd_nn::SafetensorsCheckpoint;
use ferrograd_nn::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device};
use std::path::PathBuf;

type Model = (Linear<4, 8>, ReLU, BatchNorm1D<8>, LinearNoBias<8, 3>);

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-safetensors-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A safetensors file by hand: the 8-byte header length, the JSON header, the data.
fn file_with(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn round_trip_keeps_parameters_buffers_and_counters_bit_for_bit() {
    let dir = scratch("round_trip");
    let dev = seeded_test_device(0);
    let mut model = dev.build_module::<Model, f64>();
    // A training step moves the running statistics and the counter off their defaults.
    let x: Tensor<Rank2<6, 4>, f64, TestDevice> = dev.sample_normal();
    let _ = model.forward_mut(x);
    model.save_safetensors(dir.join("m.safetensors")).unwrap();

    let mut other = dev.build_module::<Model, f64>();
    other.load_safetensors(dir.join("m.safetensors")).unwrap();
    assert_eq!(other.0.weight.as_vec(), model.0.weight.as_vec());
    assert_eq!(other.2.running_mean.as_vec(), model.2.running_mean.as_vec());
    assert_eq!(other.2.running_var.as_vec(), model.2.running_var.as_vec());
    assert_eq!(other.2.num_batches_tracked, 1);
    assert_eq!(other.3.weight.as_vec(), model.3.weight.as_vec());
}

#[test]
fn bad_files_are_errors_naming_the_key_and_leave_the_model_unchanged() {
    let dir = scratch("bad");
    let dev = seeded_test_device(0);
    let model = dev.build_module::<(Linear<2, 2>,), f32>();
    let path = dir.join("m.safetensors");
    let mut fresh = dev.build_module::<(Linear<2, 2>,), f32>();
    let before = fresh.0.weight.as_vec();
    let mut error_for = |bytes: Vec<u8>| {
        std::fs::write(&path, bytes).unwrap();
        let error = fresh.load_safetensors(&path).unwrap_err().to_string();
        assert_eq!(fresh.0.weight.as_vec(), before, "a failed load changed the model");
        assert!(error.contains("m.safetensors"), "{error}");
        error
    };

    let f32s = |n: usize| vec![0u8; 4 * n];
    // A wrong dtype, a wrong shape, a missing key.
    let error = error_for(file_with(
        r#"{"0.weight":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]},"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[32,40]}}"#,
        &[0u8; 40],
    ));
    assert!(
        error.contains("\"0.weight\"") && error.contains("F64") && error.contains("float32"),
        "{error}"
    );
    let error = error_for(file_with(
        r#"{"0.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
        &f32s(6),
    ));
    assert!(
        error.contains("\"0.weight\"") && error.contains("(4,)") && error.contains("(2, 2)"),
        "{error}"
    );
    let error = error_for(file_with(
        r#"{"0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        &f32s(4),
    ));
    assert!(error.contains("missing [\"0.bias\"]"), "{error}");

    // A header claiming more bytes than the file has, data that stops short, a huge
    // shape, a header that is not JSON, and a truncated file.
    let mut huge_header = u64::MAX.to_le_bytes().to_vec();
    huge_header.extend(b"{}");
    let error = error_for(huge_header);
    assert!(error.contains("not a valid safetensors file"), "{error}");
    let error = error_for(file_with(
        r#"{"0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
        &f32s(5),
    ));
    assert!(error.contains("not a valid safetensors file"), "{error}");
    let error = error_for(file_with(
        r#"{"0.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]},"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
        &f32s(6),
    ));
    assert!(error.contains("not a valid safetensors file"), "{error}");
    let error = error_for(file_with("not json", &[]));
    assert!(error.contains("not a valid safetensors file"), "{error}");
    model.save_safetensors(&path).unwrap();
    let whole = std::fs::read(&path).unwrap();
    for cut in [0, 7, 20, whole.len() - 1] {
        error_for(whole[..cut].to_vec());
    }
}
