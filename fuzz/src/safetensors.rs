//! The safetensors format under the fuzzer: valid files, and mutations that know its
//! layout (an 8-byte header length, a JSON header, the data).

use crate::mutate::interesting;
use crate::rng::Rng;
use crate::targets::Format;
use ferrograd_cpu::Cpu;
use ferrograd_nn::checkpoint::{Checkpoint, CheckpointElement};
use ferrograd_nn::prelude::Error;
use ferrograd_nn::{LoadOptions, LoadReport, SafetensorsCheckpoint};
use std::path::Path;

/// Hugging Face's safetensors, through `save_safetensors` / `load_safetensors_with`.
pub struct Safetensors;

/// A valid file taken apart: its JSON header and its data.
pub struct Parts {
    header: String,
    data: Vec<u8>,
}

/// Puts a file together from a header (its length written as declared) and data.
fn assemble(declared_length: u64, header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = declared_length.to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

impl Format for Safetensors {
    const NAME: &'static str = "safetensors";
    const EXTENSION: &'static str = "safetensors";
    type Parsed = Parts;

    fn save<E: CheckpointElement, M: Checkpoint<E, Cpu>>(model: &M, path: &Path) -> Result<(), Error> {
        model.save_safetensors(path)
    }

    fn load<E: CheckpointElement, M: Checkpoint<E, Cpu>>(
        model: &mut M,
        path: &Path,
        options: LoadOptions,
    ) -> Result<LoadReport, Error> {
        model.load_safetensors_with(path, options)
    }

    fn variants(saved: &[u8]) -> Vec<Vec<u8>> {
        // As written, and with the header padded with spaces (which the format allows).
        let parts = Self::parse(saved);
        let padded = format!("{}{}", parts.header, " ".repeat(7));
        vec![saved.to_vec(), assemble(padded.len() as u64, &padded, &parts.data)]
    }

    fn parse(valid: &[u8]) -> Parts {
        let length = u64::from_le_bytes(valid[..8].try_into().expect("the seeds are valid")) as usize;
        Parts {
            header: String::from_utf8(valid[8..8 + length].to_vec()).expect("the seeds are valid"),
            data: valid[8 + length..].to_vec(),
        }
    }

    fn mutate(parsed: &Parts, rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8> {
        let mut header = parsed.header.clone();
        let mut data = parsed.data.clone();
        let mut declared = None;
        match rng.below(6) {
            0 => {
                // A number in the header (a dim or an offset) replaced by an edge value.
                let digits: Vec<usize> = header
                    .match_indices(|c: char| c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = digits.get(rng.below(digits.len().max(1))) {
                    let end = header[at..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(header.len(), |e| at + e);
                    let old: u64 = header[at..end].parse().unwrap_or(0);
                    let new = interesting(rng, 8, old);
                    log.push(format!("header number {old} at {at} -> {new}"));
                    header.replace_range(at..end, &new.to_string());
                }
            }
            1 => {
                let dtypes = ["F16", "BF16", "F32", "F64", "I64", "I8", "BOOL", "U8", "X"];
                let from = *rng.pick(&["F32", "F64", "I64"]);
                let to = *rng.pick(&dtypes);
                log.push(format!("dtype {from} -> {to}"));
                header = header.replacen(from, to, 1);
            }
            2 => {
                // A key twice: the first tensor's entry repeated.
                if let Some(end) = header.find("},") {
                    let entry = header[1..=end].to_string();
                    log.push("first tensor entry repeated".into());
                    header.insert_str(1, &format!("{entry},"));
                }
            }
            3 => {
                let new = interesting(rng, 8, header.len() as u64);
                log.push(format!("declared header length {} -> {new}", header.len()));
                declared = Some(new);
            }
            4 => {
                let cut = rng.below(data.len() + 1);
                log.push(format!("data cut to {cut} of {} bytes", data.len()));
                data.truncate(cut);
            }
            _ => {
                let cut = rng.below(header.len() + 1);
                log.push(format!("header cut to {cut} of {} bytes", header.len()));
                header.truncate(cut);
            }
        }
        assemble(declared.unwrap_or(header.len() as u64), &header, &data)
    }
}
