//! The child process's side: generates the inputs of a range of seeds, loads each
//! under `catch_unwind`, and prints its counts for the driver.

use crate::mutate;
use crate::rng::Rng;
use crate::targets::Target;
use ferrograd_nn::prelude::Error;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// An input that broke a rule: its seed, target, how it was made, and what happened.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The input's seed: `fuzz-checkpoints replay SEED` makes it again.
    pub seed: u64,
    /// The target it was loaded into.
    pub target: String,
    /// The mutations that made it.
    pub mutation: String,
    /// The panic's message, the signal, or what changed.
    pub message: String,
}

/// What a range of inputs did; the driver adds up the children's.
#[derive(Default, Debug)]
pub struct Stats {
    /// Inputs generated and loaded.
    pub inputs: u64,
    /// Strict loads that succeeded.
    pub ok_strict: u64,
    /// Non-strict loads that succeeded.
    pub ok_lenient: u64,
    /// Failed loads, by the kind of their message.
    pub errors: BTreeMap<String, u64>,
    /// Loads that panicked.
    pub panics: Vec<Finding>,
    /// Failed loads that changed the model anyway.
    pub changed: Vec<Finding>,
    /// Inputs that killed the process (a signal, an allocation failure, a hang).
    pub aborts: Vec<Finding>,
    /// The largest resident set of any child, in KiB (VmHWM).
    pub peak_rss_kib: u64,
    /// The largest virtual size of any child, in KiB (VmPeak).
    pub peak_virtual_kib: u64,
    /// The slowest load: microseconds, seed, target. Reported, not judged: timings on
    /// a shared machine are noise, but a quadratic reader shows up here first.
    pub slowest: (u64, u64, String),
}

impl Stats {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: Stats) {
        self.inputs += other.inputs;
        self.ok_strict += other.ok_strict;
        self.ok_lenient += other.ok_lenient;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.panics.extend(other.panics);
        self.changed.extend(other.changed);
        self.aborts.extend(other.aborts);
        self.peak_rss_kib = self.peak_rss_kib.max(other.peak_rss_kib);
        self.peak_virtual_kib = self.peak_virtual_kib.max(other.peak_virtual_kib);
        if other.slowest.0 > self.slowest.0 {
            self.slowest = other.slowest;
        }
    }

    /// The counts as lines of tab-separated fields, ended by `done`.
    pub fn to_lines(&self) -> String {
        let clean = |s: &str| s.replace(['\t', '\r'], " ").replace('\n', "\\n");
        let mut out = format!(
            "inputs\t{}\nok\t{}\t{}\nmemory\t{}\t{}\n",
            self.inputs, self.ok_strict, self.ok_lenient, self.peak_rss_kib, self.peak_virtual_kib
        );
        out += &format!(
            "slowest\t{}\t{}\t{}\n",
            self.slowest.0,
            self.slowest.1,
            clean(&self.slowest.2)
        );
        for (kind, n) in &self.errors {
            out += &format!("error\t{n}\t{}\n", clean(kind));
        }
        for (tag, findings) in [("panic", &self.panics), ("changed", &self.changed)] {
            for f in findings {
                out += &format!(
                    "{tag}\t{}\t{}\t{}\t{}\n",
                    f.seed,
                    clean(&f.target),
                    clean(&f.mutation),
                    clean(&f.message)
                );
            }
        }
        out + "done\n"
    }

    /// Reads [`Stats::to_lines`]; `None` unless it ends with `done`.
    pub fn from_lines(text: &str) -> Option<Stats> {
        let mut stats = Stats::default();
        let mut done = false;
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            match fields[0] {
                "inputs" => stats.inputs = number(1)?,
                "ok" => (stats.ok_strict, stats.ok_lenient) = (number(1)?, number(2)?),
                "memory" => (stats.peak_rss_kib, stats.peak_virtual_kib) = (number(1)?, number(2)?),
                "slowest" => stats.slowest = (number(1)?, number(2)?, fields.get(3)?.to_string()),
                "error" => *stats.errors.entry(fields.get(2)?.to_string()).or_default() += number(1)?,
                tag @ ("panic" | "changed") => {
                    let finding = Finding {
                        seed: number(1)?,
                        target: fields.get(2)?.to_string(),
                        mutation: fields.get(3)?.to_string(),
                        message: fields.get(4)?.to_string(),
                    };
                    if tag == "panic" {
                        &mut stats.panics
                    } else {
                        &mut stats.changed
                    }
                    .push(finding);
                }
                "done" => done = true,
                _ => {}
            }
        }
        done.then_some(stats)
    }
}

/// Input `seed`: the index of its target, its bytes, and the mutations that made it.
pub fn generate(targets: &[Target], seed: u64) -> (usize, Vec<u8>, Vec<String>) {
    let mut rng = Rng::new(seed);
    let t = rng.below(targets.len());
    let target = &targets[t];
    let s = rng.below(target.seeds.len());
    let mut log = vec![format!("seed file {s} of {}", target.name)];
    let roll = rng.below(100);
    let bytes = if roll < 45 {
        let mut bytes = target.mutate(s, &mut rng, &mut log);
        if rng.chance(20) {
            mutate::havoc(&mut bytes, &mut rng, &mut log);
        }
        bytes
    } else if roll < 88 {
        // Mostly one mutation, sometimes a stack of them.
        let mut bytes = target.seeds[s].clone();
        let n = if rng.chance(60) { 1 } else { 2 + rng.below(5) };
        for _ in 0..n {
            mutate::havoc(&mut bytes, &mut rng, &mut log);
        }
        bytes
    } else if roll < 96 {
        let other = &targets[rng.below(targets.len())];
        let other_seed = &other.seeds[rng.below(other.seeds.len())];
        log.push(format!("with a seed file of {}", other.name));
        let (a, b) = if rng.chance(50) {
            (&target.seeds[s], other_seed)
        } else {
            (other_seed, &target.seeds[s])
        };
        let mut bytes = mutate::splice(a, b, &mut rng, &mut log);
        if rng.chance(30) {
            mutate::havoc(&mut bytes, &mut rng, &mut log);
        }
        bytes
    } else {
        mutate::random_file(&target.seeds[s], &mut rng, &mut log)
    };
    (t, bytes, log)
}

thread_local! {
    /// The last panic's message and place, kept by the hook for the finding.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether a load is running: its panics are findings, kept quiet; any other
    /// panic is the harness's own, and is printed as usual.
    static IN_LOAD: Cell<bool> = const { Cell::new(false) };
}

/// Replaces the default panic output during loads (a backtrace per caught panic) with
/// a note for the finding.
fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_LOAD.with(Cell::get) {
            let message = info.to_string();
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(message));
        } else {
            default(info);
        }
    }));
}

/// Runs one load with its panics caught and kept quiet.
fn caught<T>(load: impl FnOnce() -> T) -> std::thread::Result<T> {
    IN_LOAD.with(|flag| flag.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(load));
    IN_LOAD.with(|flag| flag.set(false));
    outcome
}

/// The kind of a load's error: its message with the key, numbers and quoted text
/// blanked, so that errors group by what went wrong rather than where.
pub fn error_kind(error: &Error) -> String {
    let text = match error {
        Error::Checkpoint { message, .. } => message.clone(),
        other => format!("(not a checkpoint error) {other}"),
    };
    let mut kind = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
                kind.push_str("\"…\"");
            }
            '0'..='9' => {
                while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                    chars.next();
                }
                kind.push('N');
            }
            '[' => {
                // Lists of keys.
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
                kind.push_str("[…]");
            }
            _ => kind.push(c),
        }
        if kind.chars().count() >= 90 {
            kind.push('…');
            break;
        }
    }
    kind
}

/// Loads the inputs of seeds `start..start + count`, saving each panicking input under
/// `findings`, and returns the counts.
pub fn run(start: u64, count: u64, findings: &Path) -> Stats {
    let mut targets = crate::targets::all();
    let scratch = scratch_path("inputs", "bin");
    let mut file = ScratchFile::create(&scratch);
    check_seeds(&mut targets, &mut file, &scratch);
    quiet_panics();
    let mut fingerprints: Vec<u64> = targets.iter().map(Target::fingerprint).collect();
    let mut stats = Stats::default();
    for seed in start..start + count {
        let (t, bytes, log) = generate(&targets, seed);
        file.put(&bytes);
        let target = &mut targets[t];
        for strict in [true, false] {
            let started = std::time::Instant::now();
            let outcome = caught(|| target.load(&scratch, strict));
            let micros = started.elapsed().as_micros() as u64;
            if micros > stats.slowest.0 {
                stats.slowest = (micros, seed, target.name.clone());
            }
            let finding = |message: String| Finding {
                seed,
                target: format!(
                    "{} ({})",
                    target.name,
                    if strict { "load" } else { "load_with, not strict" }
                ),
                mutation: log.join("; "),
                message,
            };
            match outcome {
                Ok(Ok(_)) => {
                    if strict {
                        stats.ok_strict += 1;
                    } else {
                        stats.ok_lenient += 1;
                    }
                    fingerprints[t] = target.fingerprint();
                }
                Ok(Err(error)) => {
                    *stats.errors.entry(error_kind(&error)).or_default() += 1;
                    if target.fingerprint() != fingerprints[t] {
                        let f = finding(format!("the load failed ({error}) but changed the model"));
                        save_finding(findings, "changed", &f, &bytes, target.extension);
                        stats.changed.push(f);
                        fingerprints[t] = target.fingerprint();
                    }
                }
                Err(_) => {
                    let message = LAST_PANIC
                        .with(|last| last.borrow_mut().take())
                        .unwrap_or_else(|| "a panic without a message".into());
                    let f = finding(message);
                    save_finding(findings, "panic", &f, &bytes, target.extension);
                    stats.panics.push(f);
                    fingerprints[t] = target.fingerprint();
                }
            }
        }
        stats.inputs += 1;
    }
    let _ = std::fs::remove_file(&scratch);
    (stats.peak_rss_kib, stats.peak_virtual_kib) = memory_peaks();
    stats
}

/// Every seed file loads, strictly: else the harness would be mutating broken files.
fn check_seeds(targets: &mut [Target], file: &mut ScratchFile, scratch: &Path) {
    for target in targets {
        for (i, seed) in target.seeds.clone().iter().enumerate() {
            file.put(seed);
            if let Err(error) = target.load(scratch, true) {
                panic!("seed file {i} of {} does not load: {error}", target.name);
            }
        }
    }
}

/// The one file every input of a child is written to in turn.
struct ScratchFile(std::fs::File);

impl ScratchFile {
    fn create(path: &Path) -> Self {
        Self(std::fs::File::create(path).expect("creating a scratch file"))
    }

    /// Makes the file hold `bytes`. Overwritten in place, then cut to length, rather
    /// than truncated to nothing and rewritten: ext4 flushes a file truncated to zero
    /// when it is closed (`auto_da_alloc`), which made every input wait on the disk.
    fn put(&mut self, bytes: &[u8]) {
        let file = &mut self.0;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(bytes))
            .and_then(|_| file.set_len(bytes.len() as u64))
            .expect("writing an input to the scratch file");
    }
}

/// A file in the temporary folder that is this process's own.
pub fn scratch_path(what: &str, extension: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferrograd-fuzz-{what}-{}.{extension}", std::process::id()))
}

/// Saves a finding's input and a note of it as `<findings>/<kind>-<seed>.*`.
pub fn save_finding(findings: &Path, kind: &str, finding: &Finding, bytes: &[u8], extension: &str) {
    let _ = std::fs::create_dir_all(findings);
    let stem = findings.join(format!("{kind}-{}", finding.seed));
    let _ = std::fs::write(stem.with_extension(extension), bytes);
    let note = format!(
        "seed: {}\ntarget: {}\nmutation: {}\n{kind}: {}\nreplay: cargo run --release -p ferrograd-fuzz -- replay {}\n",
        finding.seed, finding.target, finding.mutation, finding.message, finding.seed
    );
    let _ = std::fs::write(stem.with_extension("txt"), note);
}

/// This process's peak resident and virtual sizes in KiB, from `/proc/self/status`
/// (zeros where there is none).
pub fn memory_peaks() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmPeak:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_made_from_its_seed_alone() {
        // What replay and the bisection rely on: the same seed, the same bytes, whatever
        // was generated before.
        let targets = crate::targets::all();
        let later = generate(&targets, 1234);
        for seed in 0..50 {
            generate(&targets, seed);
        }
        let again = generate(&targets, 1234);
        assert_eq!((later.0, &later.1, &later.2), (again.0, &again.1, &again.2));
    }

    #[test]
    fn errors_group_by_what_went_wrong() {
        let error = |message: &str| Error::Checkpoint {
            path: "/tmp/x.npz".into(),
            message: message.into(),
        };
        assert_eq!(
            error_kind(&error(
                "\"0.bias\": the array's shape is (4, 8); the model's parameter is (8,)"
            )),
            error_kind(&error(
                "\"2.weight\": the array's shape is (3, 1); the model's parameter is (7,)"
            )),
        );
        assert_eq!(
            error_kind(&error("the keys do not match: missing [\"a\"], unexpected []")),
            "the keys do not match: missing […], unexpected […]"
        );
    }

    #[test]
    fn counts_survive_the_trip_through_the_pipe() {
        let mut stats = Stats {
            inputs: 3,
            ok_strict: 1,
            ok_lenient: 2,
            peak_rss_kib: 4000,
            peak_virtual_kib: 9000,
            ..Stats::default()
        };
        stats.errors.insert("a kind\twith a tab".into(), 5);
        stats.panics.push(Finding {
            seed: 7,
            target: "mlp".into(),
            mutation: "flip bit 3 at 10".into(),
            message: "panicked at x.rs:1:2:\nboom".into(),
        });
        let back = Stats::from_lines(&stats.to_lines()).unwrap();
        assert_eq!((back.inputs, back.ok_strict, back.ok_lenient), (3, 1, 2));
        assert_eq!((back.peak_rss_kib, back.peak_virtual_kib), (4000, 9000));
        assert_eq!(back.errors["a kind with a tab"], 5);
        assert_eq!(
            (back.panics[0].seed, back.panics[0].message.as_str()),
            (7, "panicked at x.rs:1:2:\\nboom")
        );
        assert!(
            Stats::from_lines("inputs\t3\n").is_none(),
            "a child cut short has no counts"
        );
    }
}
