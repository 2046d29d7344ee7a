//! The npz format, as the harness knows it: the valid files to start from, a small
//! zip writer that can lie (wrong sizes and checksums, zip64 records, names stored
//! twice), and the edits that know where a zip's headers and an `.npy` header are.
//!
//! Edits to an entry's `.npy` bytes are made before the zip is written, so the entry's
//! checksum matches them and the loader's own parser, not the zip's CRC check, is what
//! meets the damage.

use crate::mutate::{interesting, read_le, write_le};
use crate::rng::Rng;
use crate::targets::Format;
use ferrograd_cpu::Cpu;
use ferrograd_nn::checkpoint::CheckpointElement;
use ferrograd_nn::prelude::*;
use ferrograd_nn::{LoadOptions, LoadReport};
use std::io::{Cursor, Read, Write};
use std::path::Path;

/// npz checkpoints, through `Checkpoint::save` and `Checkpoint::load_with`.
pub struct Npz;

/// One zip entry: its name as raw bytes (so that it can be made invalid UTF-8) and its
/// uncompressed contents.
#[derive(Clone)]
pub struct Entry {
    name: Vec<u8>,
    data: Vec<u8>,
}

impl Format for Npz {
    const NAME: &'static str = "npz";
    const EXTENSION: &'static str = "npz";
    type Parsed = Vec<Entry>;

    fn save<E: CheckpointElement, M: Checkpoint<E, Cpu>>(model: &M, path: &Path) -> Result<(), Error> {
        model.save(path)
    }

    fn load<E: CheckpointElement, M: Checkpoint<E, Cpu>>(
        model: &mut M,
        path: &Path,
        options: LoadOptions,
    ) -> Result<LoadReport, Error> {
        model.load_with(path, options)
    }

    fn variants(saved: &[u8]) -> Vec<Vec<u8>> {
        let entries = Self::parse(saved);
        // As `save` writes it (stored), deflated as numpy's `savez_compressed` writes
        // it, and in the reverse order through the harness's own writer.
        let mut reversed = entries.clone();
        reversed.reverse();
        vec![
            saved.to_vec(),
            write_deflated(&entries),
            write_zip(&reversed, &ZipLies::default()),
        ]
    }

    fn parse(valid: &[u8]) -> Vec<Entry> {
        let mut archive = zip::ZipArchive::new(Cursor::new(valid)).expect("the seeds are valid zips");
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).expect("the seeds are valid zips");
                let name = file.name_raw().to_vec();
                let mut data = Vec::new();
                file.read_to_end(&mut data).expect("the seeds are valid zips");
                Entry { name, data }
            })
            .collect()
    }

    fn mutate(entries: &Vec<Entry>, rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8> {
        let mut entries = entries.clone();
        let edit_entries = rng.chance(65);
        if edit_entries {
            for _ in 0..1 + rng.below(2) {
                edit_entry_list(&mut entries, rng, log);
            }
        }
        let mut bytes = if rng.chance(20) && names_are_unique_text(&entries) {
            log.push("written deflated".into());
            write_deflated(&entries)
        } else {
            let lies = ZipLies::draw(entries.len(), rng, log);
            write_zip(&entries, &lies)
        };
        if !edit_entries || rng.chance(40) {
            for _ in 0..1 + rng.below(2) {
                edit_zip_field(&mut bytes, rng, log);
            }
        }
        if rng.chance(3) {
            repeat_record(&mut bytes, rng, log);
        }
        bytes
    }
}

// ---------------------------------------------------------------------------------
// Edits to the list of entries and to the `.npy` arrays in them.

/// Applies one edit to the entries: to an array's header or data, or to the names.
fn edit_entry_list(entries: &mut Vec<Entry>, rng: &mut Rng, log: &mut Vec<String>) {
    if entries.is_empty() {
        entries.push(Entry {
            name: b"0.weight.npy".to_vec(),
            data: npy(1, b"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &[0; 4]),
        });
        log.push("add an entry to an empty archive".into());
        return;
    }
    let i = rng.below(entries.len());
    let key = String::from_utf8_lossy(&entries[i].name).into_owned();
    match rng.below(20) {
        0..=9 => {
            edit_npy(&mut entries[i].data, rng, log);
            if let Some(last) = log.last_mut() {
                last.push_str(&format!(" in {key}"));
            }
        }
        10 => {
            entries.remove(i);
            log.push(format!("drop {key}"));
        }
        11 => {
            let copy = entries[i].clone();
            entries.insert(rng.below(entries.len() + 1), copy);
            log.push(format!("store {key} twice"));
        }
        12 | 13 => {
            let other = String::from_utf8_lossy(&entries[rng.below(entries.len())].name).into_owned();
            let new: Vec<u8> = match rng.below(8) {
                0 => other.clone().into_bytes(),
                1 => other.trim_end_matches(".npy").as_bytes().to_vec(),
                2 => key.trim_end_matches(".npy").as_bytes().to_vec(),
                3 => Vec::new(),
                4 => b"\xff\xfe.npy".to_vec(),
                5 => format!("/{key}").into_bytes(),
                6 => format!("{key}.npy").into_bytes(),
                _ => vec![b'a'; 1 + rng.below(70_000)],
            };
            log.push(format!(
                "rename {key} to {:?}",
                String::from_utf8_lossy(&new[..new.len().min(40)])
            ));
            entries[i].name = new;
        }
        14 => {
            let j = rng.below(entries.len());
            let data = entries[j].data.clone();
            entries[j].data = std::mem::replace(&mut entries[i].data, data);
            log.push(format!("swap the arrays of entries {i} and {j}"));
        }
        15 => {
            let data = entries[i].data.clone();
            entries.push(Entry {
                name: b"extra.npy".to_vec(),
                data,
            });
            log.push(format!("add an unexpected key with {key}'s array"));
        }
        16 => {
            // Valid in another way: the same values as the other dtype, big-endian or
            // column-major, so that the loader's successful paths are fuzzed too.
            rewrite_valid(&mut entries[i].data, rng, log);
            if let Some(last) = log.last_mut() {
                last.push_str(&format!(" in {key}"));
            }
        }
        17 => {
            let data = &mut entries[i].data;
            let keep = rng.below(data.len() + 1);
            data.truncate(keep);
            log.push(format!("cut {key}'s entry to {keep} bytes"));
        }
        18 => {
            let most = if rng.chance(90) { 64 } else { 200_000 };
            let n = 1 + rng.below(most);
            entries[i].data.extend(rng.bytes(n));
            log.push(format!("append {n} bytes to {key}'s entry"));
        }
        _ => {
            let n = rng.below(600);
            entries[i].data = rng.bytes(n);
            log.push(format!("replace {key}'s entry with {n} random bytes"));
        }
    }
}

/// An `.npy` array: version, header text and data. Its header length is computed.
pub fn npy(major: u8, header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, 0];
    if major == 1 {
        bytes.extend((header.len() as u16).to_le_bytes());
    } else {
        bytes.extend((header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    bytes
}

/// The header text and data of an `.npy` array in version 1, 2 or 3; `None` when it is
/// not one.
fn split_npy(bytes: &[u8]) -> Option<(u8, Vec<u8>, Vec<u8>)> {
    let major = *bytes.get(6)?;
    let (len, start): (usize, usize) = match major {
        1 => (read_le(bytes.get(..10)?, 8, 2) as usize, 10),
        2 | 3 => (read_le(bytes.get(..12)?, 8, 4) as usize, 12),
        _ => return None,
    };
    let header = bytes.get(start..start.checked_add(len)?)?.to_vec();
    Some((major, header, bytes[start + len..].to_vec()))
}

const SHAPES: &[&str] = &[
    "()",
    "(0,)",
    "(1,)",
    "(0, 0)",
    "(8, 4)",
    "(4, 8)",
    "(8, 4, 1)",
    "(1, 8, 4)",
    "(32,)",
    "(-1, 4)",
    "(18446744073709551615,)",
    "(18446744073709551616,)",
    "(9223372036854775807, 2)",
    "(4294967296, 4294967296)",
    "(1000000000000, 1000000000000)",
    "(99999999999999999999999999,)",
    "((8,), 4)",
    "(8 4)",
    "(8,,4)",
    "(,)",
    "(",
    ")",
    "(8, 4",
    "[8, 4]",
    "(0x8, 4)",
    "(+8, 4)",
    "( 8 , 4 , )",
    "(8, 4)) ",
    "(8.0, 4)",
    "(٨, 4)",
];

const DESCRS: &[&str] = &[
    "'<f4'",
    "'<f8'",
    "'>f4'",
    "'>f8'",
    "'|f4'",
    "'=f4'",
    "'<f2'",
    "'<f16'",
    "'<i8'",
    "'|u1'",
    "'|b1'",
    "'O'",
    "'<c8'",
    "''",
    "'<f4<f4'",
    "'<f'",
    "'f4'",
    "'<F4'",
    "'<f4",
    "<f4",
    "'<U10'",
    "[('a', '<f4')]",
    "\"<f4\"",
    "'<f\u{e9}'",
];

const FORTRAN: &[&str] = &["True", "False", "1", "0", "None", "'False'", "Tru", "Falsey", ""];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "3",
    "-1",
    "+3",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e3",
    "",
];

/// Applies one edit to an `.npy` array: its header text, its version or header length
/// field, or its data.
fn edit_npy(bytes: &mut Vec<u8>, rng: &mut Rng, log: &mut Vec<String>) {
    let Some((mut major, mut header, mut data)) = split_npy(bytes) else {
        let at = rng.below(bytes.len() + 1);
        let n = 1 + rng.below(16);
        bytes.splice(at..at, rng.bytes(n));
        log.push(format!("insert random bytes at {at} of a damaged array"));
        return;
    };
    let mut keep_length_field = false;
    match rng.below(14) {
        0 | 1 => {
            let shape = *rng.pick(SHAPES);
            header = replace_value(&header, b"'shape':", shape.as_bytes(), b')');
            log.push(format!("set the shape to {shape}"));
        }
        2 => {
            let descr = *rng.pick(DESCRS);
            header = replace_value(&header, b"'descr':", descr.as_bytes(), b',');
            log.push(format!("set the descr to {descr}"));
        }
        3 => {
            let value = *rng.pick(FORTRAN);
            header = replace_value(&header, b"'fortran_order':", value.as_bytes(), b',');
            log.push(format!("set fortran_order to {value:?}"));
        }
        4 => {
            // A number anywhere in the header (a dim, or the f4 of the descr).
            let runs: Vec<(usize, usize)> = digit_runs(&header);
            if let Some(&(start, end)) = runs.get(rng.below(runs.len().max(1))) {
                let number = *rng.pick(NUMBERS);
                header.splice(start..end, number.bytes());
                log.push(format!("replace the number at {start} of the header with {number:?}"));
            }
        }
        5 => {
            let key = *rng.pick(&["'descr'", "'fortran_order'", "'shape'"]);
            let value = *rng.pick(&["'<f4'", "False", "(8, 4)", "(3,)", "()"]);
            let close = header.iter().rposition(|&b| b == b'}').unwrap_or(header.len());
            let extra = format!("{key}: {value}, ");
            header.splice(close..close, extra.bytes());
            log.push(format!("add a second {extra}to the header"));
        }
        6 => {
            let key = *rng.pick(&["'descr':", "'fortran_order':", "'shape':"]);
            header = replace_value(&header, key.as_bytes(), b"", b',');
            if let Some(at) = find(&header, key.as_bytes()) {
                header.drain(at..at + key.len());
            }
            log.push(format!("remove {key} from the header"));
        }
        7 => {
            let n = 1 + rng.below(3);
            for _ in 0..n {
                let at = rng.below(header.len() + 1);
                let c = *rng.pick(b"{}()[],:'\" 0123456789\x00\xff\n\\");
                if at < header.len() && rng.chance(50) {
                    header[at] = c;
                } else {
                    header.insert(at, c);
                }
            }
            log.push(format!("change {n} characters of the header"));
        }
        8 => {
            let keep = rng.below(header.len() + 1);
            header.truncate(keep);
            log.push(format!("cut the header to {keep} bytes"));
        }
        9 => {
            let n = *rng.pick(&[65_536usize, 70_000, 65_535 - header.len().min(65_535), 1 << 17]);
            header.extend(std::iter::repeat_n(b' ', n));
            log.push(format!("pad the header with {n} spaces"));
        }
        10 => {
            major = *rng.pick(&[0u8, 1, 2, 3, 4, 255]);
            log.push(format!("set the version to {major}.0"));
        }
        11 => {
            // The header length field itself, no longer matching the header.
            keep_length_field = true;
            let mut out = npy(major, &header, &data);
            let width = if major == 1 { 2 } else { 4 };
            let value = interesting(rng, width, read_le(&out, 8, width));
            write_le(&mut out, 8, width, value);
            log.push(format!("set the header length field to {value}"));
            *bytes = out;
        }
        12 => {
            let keep = rng.below(data.len() + 1);
            data.truncate(keep);
            log.push(format!("cut the data to {keep} bytes"));
        }
        _ => {
            let n = 1 + rng.below(64);
            data.extend(rng.bytes(n));
            log.push(format!("add {n} bytes to the data"));
        }
    }
    if !keep_length_field {
        *bytes = npy(major, &header, &data);
    }
}

/// Rewrites an array as another valid `.npy` of the same values: the other float
/// width, big-endian, or column-major, or as version 2.0.
fn rewrite_valid(bytes: &mut Vec<u8>, rng: &mut Rng, log: &mut Vec<String>) {
    let Some((_, header, data)) = split_npy(bytes) else {
        return;
    };
    let text = String::from_utf8_lossy(&header).into_owned();
    let width = if text.contains("f8") { 8 } else { 4 };
    let (descr, data, what) = match rng.below(3) {
        0 => {
            let swapped: Vec<u8> = data.chunks(width).flat_map(|c| c.iter().rev().copied()).collect();
            (format!(">f{width}"), swapped, "big-endian")
        }
        1 if width == 4 => {
            let wide: Vec<u8> = data
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
                .collect();
            ("<f8".to_string(), wide, "as float64")
        }
        1 => {
            let narrow: Vec<u8> = data
                .chunks_exact(8)
                .flat_map(|c| (f64::from_le_bytes(c.try_into().unwrap()) as f32).to_le_bytes())
                .collect();
            ("<f4".to_string(), narrow, "as float32")
        }
        _ => (format!("<f{width}"), data, "as version 2.0"),
    };
    let header = replace_value(&header, b"'descr':", format!("'{descr}'").as_bytes(), b',');
    *bytes = npy(if what == "as version 2.0" { 2 } else { 1 }, &header, &data);
    log.push(format!("rewrite the array {what}"));
}

/// The header with the value after `key` (up to and including `end` for a tuple, or up
/// to `end` otherwise) replaced; unchanged when the key is not there.
fn replace_value(header: &[u8], key: &[u8], value: &[u8], end: u8) -> Vec<u8> {
    let Some(at) = find(header, key) else {
        return header.to_vec();
    };
    let start = at + key.len();
    let stop = match header[start..].iter().position(|&b| b == end) {
        Some(i) if end == b')' => start + i + 1,
        Some(i) => start + i,
        None => header.len(),
    };
    let mut out = header[..start].to_vec();
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(&header[stop..]);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn digit_runs(text: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_digit() {
            let start = i;
            while i < text.len() && text[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

// ---------------------------------------------------------------------------------
// Writing zips, truthfully or not, and editing their headers afterwards.

/// What [`write_zip`] gets wrong on purpose.
#[derive(Default)]
pub struct ZipLies {
    /// Each entry's sizes in a zip64 extra field, with 0xFFFFFFFF in the header.
    zip64_extra: bool,
    /// A zip64 end-of-central-directory record and locator before the plain one.
    zip64_end: bool,
    /// An entry whose headers declare this uncompressed size.
    size: Option<(usize, u64)>,
    /// An entry whose headers carry a wrong CRC.
    crc: Option<usize>,
    /// Set bit 3 (sizes in a data descriptor after the data) in each local header.
    data_descriptor: bool,
    /// An archive comment of this many bytes.
    comment: usize,
    /// The end record's entry count, directory size and directory offset, where set:
    /// several at once, which single field edits seldom reach.
    end: [Option<u64>; 3],
}

impl ZipLies {
    fn draw(entries: usize, rng: &mut Rng, log: &mut Vec<String>) -> Self {
        let mut lies = ZipLies::default();
        if rng.chance(12) {
            lies.zip64_extra = true;
            log.push("zip64 extra fields".into());
        }
        if rng.chance(12) {
            lies.zip64_end = true;
            log.push("zip64 end records".into());
        }
        if entries > 0 && rng.chance(8) {
            let size = interesting(rng, 8, 0);
            lies.size = Some((rng.below(entries), size));
            log.push(format!("an entry declares {size} bytes"));
        }
        if entries > 0 && rng.chance(4) {
            lies.crc = Some(rng.below(entries));
            log.push("an entry's CRC is wrong".into());
        }
        if rng.chance(5) {
            lies.data_descriptor = true;
            log.push("data descriptor flag".into());
        }
        if rng.chance(5) {
            lies.comment = rng.below(300);
            log.push(format!("a {}-byte comment", lies.comment));
        }
        if rng.chance(10) {
            let width = if lies.zip64_end { 8 } else { 4 };
            for (field, what) in lies
                .end
                .iter_mut()
                .zip(["entry count", "directory size", "directory offset"])
            {
                if rng.chance(60) {
                    let value = interesting(rng, width, 0);
                    *field = Some(value);
                    log.push(format!("the end record's {what} is {value:#x}"));
                }
            }
        }
        lies
    }
}

/// A zip of stored (uncompressed) entries, laid out as the spec says, except for the
/// lies asked for. Unlike the zip crate's writer it stores a name twice when asked.
pub fn write_zip(entries: &[Entry], lies: &ZipLies) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let offset = out.len() as u64;
        let crc = crc32(&entry.data) ^ if lies.crc == Some(i) { 1 } else { 0 };
        let real = entry.data.len() as u64;
        let declared = match lies.size {
            Some((j, size)) if j == i => size,
            _ => real,
        };
        let flags: u16 = if lies.data_descriptor { 1 << 3 } else { 0 };
        let (small_size, small_declared) = if lies.zip64_extra {
            (0xffff_ffff, 0xffff_ffff)
        } else {
            (real as u32, declared as u32)
        };
        let mut extra = Vec::new();
        if lies.zip64_extra {
            extra.extend(1u16.to_le_bytes());
            extra.extend(16u16.to_le_bytes());
            extra.extend(declared.to_le_bytes());
            extra.extend(real.to_le_bytes());
        }
        // Local header.
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(45u16.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // stored
        out.extend([0, 0, 0x21, 0]); // time, date: 1980-01-01
        out.extend(crc.to_le_bytes());
        out.extend(small_size.to_le_bytes());
        out.extend(small_declared.to_le_bytes());
        out.extend((entry.name.len() as u16).to_le_bytes());
        out.extend((extra.len() as u16).to_le_bytes());
        out.extend(&entry.name);
        out.extend(&extra);
        out.extend(&entry.data);
        if lies.data_descriptor {
            out.extend(0x0807_4b50u32.to_le_bytes());
            out.extend(crc.to_le_bytes());
            out.extend((real as u32).to_le_bytes());
            out.extend((declared as u32).to_le_bytes());
        }
        // Its central directory header.
        let mut central_extra = extra.clone();
        let small_offset = if lies.zip64_extra {
            central_extra[2..4].copy_from_slice(&24u16.to_le_bytes());
            central_extra.extend(offset.to_le_bytes());
            0xffff_ffff
        } else {
            offset as u32
        };
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(45u16.to_le_bytes());
        central.extend(45u16.to_le_bytes());
        central.extend(flags.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend([0, 0, 0x21, 0]);
        central.extend(crc.to_le_bytes());
        central.extend(small_size.to_le_bytes());
        central.extend(small_declared.to_le_bytes());
        central.extend((entry.name.len() as u16).to_le_bytes());
        central.extend((central_extra.len() as u16).to_le_bytes());
        central.extend(0u16.to_le_bytes()); // comment
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(small_offset.to_le_bytes());
        central.extend(&entry.name);
        central.extend(&central_extra);
    }
    let central_start = out.len() as u64;
    out.extend(&central);
    let count = lies.end[0].unwrap_or(entries.len() as u64);
    let central_size = lies.end[1].unwrap_or(central.len() as u64);
    let central_start = lies.end[2].unwrap_or(central_start);
    if lies.zip64_end {
        let record = out.len() as u64;
        out.extend(0x0606_4b50u32.to_le_bytes());
        out.extend(44u64.to_le_bytes());
        out.extend(45u16.to_le_bytes());
        out.extend(45u16.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(central_size.to_le_bytes());
        out.extend(central_start.to_le_bytes());
        out.extend(0x0706_4b50u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(record.to_le_bytes());
        out.extend(1u32.to_le_bytes());
    }
    let (small_count, small_size, small_start) = if lies.zip64_end {
        (0xffff, 0xffff_ffff, 0xffff_ffff)
    } else {
        (count as u16, central_size as u32, central_start as u32)
    };
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(small_count.to_le_bytes());
    out.extend(small_count.to_le_bytes());
    out.extend(small_size.to_le_bytes());
    out.extend(small_start.to_le_bytes());
    out.extend((lies.comment as u16).to_le_bytes());
    out.extend(std::iter::repeat_n(b'#', lies.comment));
    out
}

/// A zip of deflated entries, through the zip crate (names must be unique text).
fn write_deflated(entries: &[Entry]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for entry in entries {
        zip.start_file(String::from_utf8_lossy(&entry.name), options)
            .expect("writing to memory");
        zip.write_all(&entry.data).expect("writing to memory");
    }
    zip.finish().expect("writing to memory").into_inner()
}

fn names_are_unique_text(entries: &[Entry]) -> bool {
    let mut names = std::collections::BTreeSet::new();
    entries
        .iter()
        .all(|e| std::str::from_utf8(&e.name).is_ok() && names.insert(e.name.clone()) && e.name.len() < 60_000)
}

/// A record's fields: (offset from its signature, width in bytes).
type Fields = &'static [(usize, usize)];

/// The zip records the harness edits: their signatures and their fields (offset from
/// the signature, width in bytes).
const RECORDS: &[(&str, u32, Fields)] = &[
    (
        "local header",
        0x0403_4b50,
        &[(4, 2), (6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)],
    ),
    (
        "central header",
        0x0201_4b50,
        &[
            (4, 2),
            (6, 2),
            (8, 2),
            (10, 2),
            (16, 4),
            (20, 4),
            (24, 4),
            (28, 2),
            (30, 2),
            (32, 2),
            (34, 2),
            (42, 4),
        ],
    ),
    (
        "end of central directory",
        0x0605_4b50,
        &[(4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2)],
    ),
    (
        "zip64 end of central directory",
        0x0606_4b50,
        &[(4, 8), (16, 4), (20, 4), (24, 8), (32, 8), (40, 8), (48, 8)],
    ),
    ("zip64 locator", 0x0706_4b50, &[(4, 4), (8, 8), (16, 4)]),
    ("zip64 extra field", 0x0010_0001, &[(2, 2), (4, 8), (12, 8)]),
    ("zip64 extra field", 0x0018_0001, &[(2, 2), (4, 8), (12, 8), (20, 8)]),
];

/// Sets one field of one zip record found in `bytes` to an edge value; a random field
/// of the file when no record is there.
fn edit_zip_field(bytes: &mut [u8], rng: &mut Rng, log: &mut Vec<String>) {
    let mut found = Vec::new();
    for (r, (_, signature, _)) in RECORDS.iter().enumerate() {
        let signature = signature.to_le_bytes();
        for (at, window) in bytes.windows(4).enumerate() {
            if window == signature {
                found.push((r, at));
            }
        }
    }
    let Some(&(r, at)) = found.get(rng.below(found.len().max(1))) else {
        return;
    };
    let (name, _, fields) = RECORDS[r];
    let (offset, width) = *rng.pick(fields);
    if at + offset + width > bytes.len() {
        return;
    }
    let old = read_le(bytes, at + offset, width);
    let value = if rng.chance(15) {
        bytes.len() as u64 + rng.below(3) as u64 - 1
    } else {
        interesting(rng, width, old)
    };
    write_le(bytes, at + offset, width, value);
    log.push(format!(
        "set the {name} at {at}'s field +{offset} from {old:#x} to {value:#x}"
    ));
}

/// Inserts up to thousands of copies of one zip record: a reader that tries every
/// end record or header it finds must not take quadratic time or memory on them.
fn repeat_record(bytes: &mut Vec<u8>, rng: &mut Rng, log: &mut Vec<String>) {
    let starts: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w[..2] == *b"PK")
        .map(|(at, _)| at)
        .collect();
    let Some(&at) = starts.get(rng.below(starts.len().max(1))) else {
        return;
    };
    let record = bytes[at..(at + 22 + rng.below(40)).min(bytes.len())].to_vec();
    let most = if rng.chance(50) { 50 } else { 5000 };
    let copies = 2 + rng.below(most);
    let to = if rng.chance(50) { at } else { bytes.len() };
    let repeated: Vec<u8> = record.iter().copied().cycle().take(record.len() * copies).collect();
    bytes.splice(to..to, repeated);
    log.push(format!(
        "insert {copies} copies of the {} bytes at {at} at {to}",
        record.len()
    ));
}

/// CRC-32 (IEEE), as zip stores it.
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        table
    });
    !data
        .iter()
        .fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn the_writer_s_honest_zips_read_back() {
        let entries = vec![
            Entry {
                name: b"a.npy".to_vec(),
                data: b"hello".to_vec(),
            },
            Entry {
                name: b"b.npy".to_vec(),
                data: vec![7; 300],
            },
        ];
        for lies in [
            ZipLies::default(),
            ZipLies {
                zip64_extra: true,
                zip64_end: true,
                ..ZipLies::default()
            },
            ZipLies {
                comment: 20,
                ..ZipLies::default()
            },
        ] {
            let parsed = Npz::parse(&write_zip(&entries, &lies));
            assert_eq!(parsed.len(), 2);
            assert_eq!(
                (parsed[1].name.as_slice(), parsed[1].data.as_slice()),
                (&b"b.npy"[..], &[7; 300][..])
            );
        }
    }
}
