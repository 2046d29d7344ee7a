//! Mutations that know nothing of the format: bit flips, byte and word sets, small
//! arithmetic, truncations, deletions, insertions, copies within the file, splices of
//! two files, and random bytes. Each appends a short description to the input's log,
//! which is what a finding prints next to its seed.

use crate::rng::Rng;

/// Values that sit on the edges parsers get wrong: zero, one, sign bits, all ones.
pub const INTERESTING_U64: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// A value for a field `width` bytes wide: an edge value, the old value nudged, or random.
pub fn interesting(rng: &mut Rng, width: usize, old: u64) -> u64 {
    let mask = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let value = match rng.below(4) {
        0 | 1 => *rng.pick(INTERESTING_U64),
        2 => {
            let delta = rng.below(33) as u64;
            if rng.chance(50) {
                old.wrapping_add(delta)
            } else {
                old.wrapping_sub(delta)
            }
        }
        _ => rng.next_u64(),
    };
    value & mask
}

/// Reads a little-endian field of `width` bytes at `at`.
pub fn read_le(bytes: &[u8], at: usize, width: usize) -> u64 {
    bytes[at..at + width]
        .iter()
        .rev()
        .fold(0, |value, &b| (value << 8) | b as u64)
}

/// Writes a little-endian field of `width` bytes at `at`.
pub fn write_le(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    for (i, b) in bytes[at..at + width].iter_mut().enumerate() {
        *b = (value >> (8 * i)) as u8;
    }
}

/// Applies one format-blind mutation to `bytes`.
pub fn havoc(bytes: &mut Vec<u8>, rng: &mut Rng, log: &mut Vec<String>) {
    let len = bytes.len();
    if len == 0 {
        let n = 1 + rng.below(64);
        let inserted = rng.bytes(n);
        log.push(format!("fill {} random bytes", inserted.len()));
        *bytes = inserted;
        return;
    }
    match rng.below(11) {
        0 | 1 => {
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                let (at, bit) = (rng.below(len), rng.below(8));
                bytes[at] ^= 1 << bit;
                log.push(format!("flip bit {bit} at {at}"));
            }
        }
        2 => {
            let at = rng.below(len);
            let value = if rng.chance(50) {
                *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xff, b'9', b'(', b'\''])
            } else {
                rng.byte()
            };
            bytes[at] = value;
            log.push(format!("set byte {at} to {value:#04x}"));
        }
        3 => {
            let width = *rng.pick(&[2usize, 4, 8]);
            if len >= width {
                let at = rng.below(len - width + 1);
                let value = interesting(rng, width, read_le(bytes, at, width));
                write_le(bytes, at, width, value);
                log.push(format!("set u{} at {at} to {value:#x}", width * 8));
            }
        }
        4 => {
            let at = rng.below(len);
            let delta = 1 + rng.below(16) as u8;
            bytes[at] = if rng.chance(50) {
                bytes[at].wrapping_add(delta)
            } else {
                bytes[at].wrapping_sub(delta)
            };
            log.push(format!("nudge byte {at} by ±{delta}"));
        }
        5 | 6 => {
            let keep = rng.below(len);
            bytes.truncate(keep);
            log.push(format!("truncate to {keep} bytes"));
        }
        7 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            bytes.drain(at..at + n);
            log.push(format!("delete {n} bytes at {at}"));
        }
        8 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(64);
            let inserted = if rng.chance(50) {
                rng.bytes(n)
            } else {
                vec![rng.byte(); n]
            };
            bytes.splice(at..at, inserted);
            log.push(format!("insert {n} bytes at {at}"));
        }
        9 => {
            // A copy of another part of the file: a header where data should be, or
            // the same entry twice.
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(512));
            let chunk = bytes[from..from + n].to_vec();
            let at = rng.below(len + 1);
            if rng.chance(50) {
                bytes.splice(at..at, chunk);
                log.push(format!("insert a copy of {n} bytes from {from} at {at}"));
            } else {
                let end = (at + n).min(len);
                bytes.splice(at..end, chunk);
                log.push(format!("overwrite {at}.. with {n} bytes from {from}"));
            }
        }
        _ => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            for b in &mut bytes[at..at + n] {
                *b = rng.byte();
            }
            log.push(format!("randomise {n} bytes at {at}"));
        }
    }
}

/// The start of `a` followed by the end of `b`, cut at random points.
pub fn splice(a: &[u8], b: &[u8], rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8> {
    let (cut_a, cut_b) = (rng.below(a.len() + 1), rng.below(b.len() + 1));
    log.push(format!(
        "splice {cut_a} bytes of one file with the bytes from {cut_b} of another"
    ));
    let mut out = a[..cut_a].to_vec();
    out.extend_from_slice(&b[cut_b..]);
    out
}

/// Random bytes, sometimes behind a real file's first bytes (its magic numbers).
pub fn random_file(prefix_from: &[u8], rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8> {
    let most = if rng.chance(90) { 512 } else { 16384 };
    let n = rng.below(most);
    let keep = if rng.chance(50) {
        rng.below(prefix_from.len().min(64) + 1)
    } else {
        0
    };
    log.push(format!("{keep} bytes of a valid file, then {n} random bytes"));
    let mut out = prefix_from[..keep].to_vec();
    out.extend(rng.bytes(n));
    out
}
