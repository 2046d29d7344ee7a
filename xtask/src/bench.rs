//! `cargo xtask bench`: runs every benchmark program of `benches/` that compares
//! ferrograd with PyTorch, and gathers their figures into one table.
//!
//! It builds the `ferrograd-benches` package in release once, then runs each program
//! of [`PROGRAMS`] in turn with two environment variables (see `benches/src/lib.rs`):
//! `FERROGRAD_BENCH_ROUNDS`, the rounds each program runs, and `FERROGRAD_BENCH_ROWS`, a
//! file to which the program appends one tab-separated row per workload and thread
//! count (its medians, their ratio, the ratio's spread over the rounds). Each program
//! interleaves its own rounds with PyTorch's, so machine noise hits both libraries
//! alike. A program's full output, with every round, goes to `<target>/bench/<name>.log`.
//!
//! The summary is printed and written as Markdown (`<target>/bench/bench.md`), with a
//! bar chart of the ratios (`<target>/bench/ratios.png`, drawn without text so that
//! plotters needs no fonts or system libraries).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Error, target_dir, workspace_root};

/// The programs run, in order. A program missing from `benches/src/bin/` is skipped
/// with a note: `cnn` and `sparse` are written on other branches and join the table
/// once merged.
const PROGRAMS: &[&str] = &[
    "cpu_gaps",
    "nn_mlp",
    "tape",
    "conv",
    "cnn",
    "resnet18_layers",
    "transformer",
    "log_softmax",
    "mnist_epoch",
    "sparse",
];

/// Rounds per program unless `--rounds` says otherwise: few, so that the whole run
/// stays near ten minutes on a small machine.
const DEFAULT_ROUNDS: usize = 3;

/// The environment variables of `benches/src/lib.rs` (`ROWS_VAR`, `ROUNDS_VAR`).
const ROWS_VAR: &str = "FERROGRAD_BENCH_ROWS";
const ROUNDS_VAR: &str = "FERROGRAD_BENCH_ROUNDS";

/// The thread counts the programs run at, for the chart's colours.
const THREADS: [usize; 2] = [1, 2];

/// Issue 13's goal for the ratio ferrograd / PyTorch of a workload, named
/// `program/workload`: the tiny chain at most 0.1×, small models (the MLP's batch-1
/// step and inference, the chain untraced) at most 0.2×, all else at most 1×. Memory
/// has no goal: the ratio is reported, the goal (no growth) is checked by `nn_mlp`.
fn goal(name: &str, unit: &str) -> Option<f64> {
    match name {
        _ if unit != "us" => None,
        "tape/chain_traced" => Some(0.1),
        "tape/chain_untraced"
        | "cpu_gaps/mlp_train_b1"
        | "cpu_gaps/mlp_infer_b1"
        | "nn_mlp/train_b1"
        | "nn_mlp/infer_b1" => Some(0.2),
        _ => Some(1.0),
    }
}

/// One figure, parsed from a program's rows file (the format of `Row::to_line` in
/// `benches/src/lib.rs`).
#[derive(Clone, Debug, PartialEq)]
struct Row {
    /// `program/workload`.
    name: String,
    label: String,
    unit: String,
    threads: usize,
    ferrograd: f64,
    pytorch: Option<f64>,
    ratio: Option<f64>,
    spread: f64,
}

impl Row {
    /// Parses one line of `program`'s rows file.
    fn parse(program: &str, line: &str) -> Result<Self, Error> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, label, unit, threads, ferrograd, pytorch, ratio, spread, _goal] = fields[..] else {
            return Err(format!("{program}: a row of {} fields, not 9: {line:?}", fields.len()).into());
        };
        let number = |s: &str| -> Result<f64, Error> {
            s.parse()
                .map_err(|_| format!("{program}: {s:?} is not a number in {line:?}").into())
        };
        let optional = |s: &str| if s == "-" { Ok(None) } else { number(s).map(Some) };
        Ok(Self {
            name: format!("{program}/{name}"),
            label: label.to_owned(),
            unit: unit.to_owned(),
            threads: threads
                .parse()
                .map_err(|_| format!("{program}: thread count {threads:?} in {line:?}"))?,
            ferrograd: number(ferrograd)?,
            pytorch: optional(pytorch)?,
            ratio: optional(ratio)?,
            spread: number(spread)?,
        })
    }
}

/// The options of `cargo xtask bench`.
struct Options {
    rounds: usize,
    only: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, Error> {
    let mut options = Options {
        rounds: DEFAULT_ROUNDS,
        only: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                let v = value()?;
                options.rounds = v
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or_else(|| format!("--rounds {v}: not a positive integer"))?;
            }
            "--only" => {
                let v = value()?;
                if !PROGRAMS.contains(&v.as_str()) {
                    return Err(format!("--only {v}: no such program (one of {})", PROGRAMS.join(", ")).into());
                }
                options.only = Some(v.clone());
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: cargo xtask bench [--rounds N] [--only PROGRAM]\n\n\
                     Runs the benchmark programs of benches/ beside PyTorch (on 1 and 2 threads,\n\
                     rounds interleaved) and prints one table; writes it to <target>/bench/bench.md\n\
                     and a bar chart of the ratios to <target>/bench/ratios.png.\n\n\
                     \x20 --rounds N        rounds per program (default {DEFAULT_ROUNDS})\n\
                     \x20 --only PROGRAM    run one program: {}\n\n\
                     PyTorch is $FERROGRAD_TORCH_PYTHON, else <target>/parity-venv (`cargo xtask parity`\n\
                     creates it); without it only ferrograd's figures are shown.",
                    PROGRAMS.join(", ")
                );
                return Ok(None);
            }
            other => return Err(format!("unknown argument `{other}` (see `cargo xtask bench --help`)").into()),
        }
    }
    Ok(Some(options))
}

/// Entry point of `cargo xtask bench`.
pub fn run(args: &[String]) -> Result<(), Error> {
    let Some(options) = parse_args(args)? else {
        return Ok(());
    };
    let root = workspace_root();
    let target = target_dir();
    let out = target.join("bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;

    let programs: Vec<&str> = PROGRAMS
        .iter()
        .copied()
        .filter(|p| options.only.as_deref().is_none_or(|only| only == *p))
        .collect();
    let (present, missing): (Vec<&str>, Vec<&str>) = programs
        .iter()
        .partition(|p| root.join(format!("benches/src/bin/{p}.rs")).exists());

    // One build for all: cargo then shares the compilation of the library and deps.
    // (With no program present, `--bin`-less, it would build every program instead.)
    if !present.is_empty() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = vec!["build", "--release", "--package", "ferrograd-benches"];
        for p in &present {
            build.extend(["--bin", p]);
        }
        crate::run_cmd(&cargo, &build)?;
    }

    let torch = torch_python(&target);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut notes = Vec::new();
    if let Err(why) = &torch {
        notes.push(format!(
            "PyTorch not found ({why}): ferrograd's figures only. `cargo xtask parity` creates the venv, \
             or set FERROGRAD_TORCH_PYTHON to a python with torch."
        ));
    }
    for p in &missing {
        notes.push(format!(
            "`{p}` skipped: benches/src/bin/{p}.rs is not in this checkout."
        ));
    }

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for program in &present {
        match run_program(&target, &out, program, options.rounds) {
            Ok(mut program_rows) => rows.append(&mut program_rows),
            Err(e) => {
                eprintln!("{program} failed: {e}");
                notes.push(format!("`{program}` failed: {e}"));
                failed.push(*program);
            }
        }
    }

    let rounds = match options.rounds {
        1 => "1 round".to_owned(),
        n => format!("{n} rounds"),
    };
    let header = match &torch {
        Ok(version) => format!(
            "ferrograd / PyTorch ({version}): medians of {rounds}, the two libraries interleaved, {cores} cores"
        ),
        Err(_) => format!("ferrograd alone: medians of {rounds}, {cores} cores"),
    };
    let table = markdown(&rows, torch.is_ok());
    let mut text = format!("{header}\n\n{table}");
    for note in &notes {
        text.push_str(&format!("\n- {note}"));
    }
    text.push('\n');
    println!("\n{text}");

    let md = out.join("bench.md");
    let chart_note = "The chart (`ratios.png`) has one bar per row with a ratio, in the table's order, \
                      on a log scale around the line of ratio 1 (bars below it: ferrograd faster); \
                      blue: 1 thread, orange: 2; grey lines every factor of 10; a black tick marks each goal.";
    std::fs::write(&md, format!("# ferrograd vs PyTorch\n\n{text}\n{chart_note}\n"))
        .map_err(|e| format!("writing {}: {e}", md.display()))?;
    let png = out.join("ratios.png");
    draw_ratios(&png, &rows).map_err(|e| format!("drawing {}: {e}", png.display()))?;
    println!("written: {} and {}", md.display(), png.display());

    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} failed (see their logs in {})", failed.join(", "), out.display()).into())
    }
}

/// PyTorch's interpreter as the programs find it, with torch's version; or why not.
fn torch_python(target: &Path) -> Result<String, String> {
    let python =
        std::env::var_os("FERROGRAD_TORCH_PYTHON").map_or_else(|| target.join("parity-venv/bin/python"), PathBuf::from);
    let output = Command::new(&python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("no interpreter at {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!("{} cannot import torch", python.display()));
    }
    Ok(format!("torch {}", String::from_utf8_lossy(&output.stdout).trim()))
}

/// Runs one program, its output to `<out>/<program>.log`, and returns its rows.
fn run_program(target: &Path, out: &Path, program: &str, rounds: usize) -> Result<Vec<Row>, Error> {
    let binary = target.join("release").join(program);
    let rows_file = out.join(format!("{program}.rows"));
    let log = out.join(format!("{program}.log"));
    // Rows from an earlier run would be counted twice.
    let _ = std::fs::remove_file(&rows_file);
    eprintln!("running {program} ({rounds} rounds; output in {})…", log.display());
    let start = Instant::now();
    let status = Command::new(&binary)
        .current_dir(workspace_root())
        .env(ROWS_VAR, &rows_file)
        .env(ROUNDS_VAR, rounds.to_string())
        .stdout(std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?)
        .status()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    eprintln!("{program}: {:.0} s", start.elapsed().as_secs_f64());
    if !status.success() {
        return Err(format!("{status}; see {}", log.display()).into());
    }
    let text = std::fs::read_to_string(&rows_file)
        .map_err(|e| format!("{program} wrote no rows ({}: {e})", rows_file.display()))?;
    text.lines().map(|line| Row::parse(program, line)).collect()
}

/// A figure with a unit people read at a glance: µs, ms or s for times.
fn figure(value: f64, unit: &str) -> String {
    match unit {
        "us" if value >= 1e6 => format!("{:.2} s", value / 1e6),
        "us" if value >= 1e3 => format!("{:.2} ms", value / 1e3),
        "us" => format!("{value:.2} µs"),
        _ => format!("{value:.1} {unit}"),
    }
}

/// The summary as a Markdown table: a row per workload and thread count.
fn markdown(rows: &[Row], with_torch: bool) -> String {
    let mut table = String::from(
        "| workload | what | threads | ferrograd | PyTorch | ratio | spread | goal |\n\
         |---|---|--:|--:|--:|--:|--:|---|\n",
    );
    for row in rows {
        let goal = goal(&row.name, &row.unit);
        let verdict = match (goal, row.ratio) {
            (Some(g), Some(r)) => format!("≤ {g} {}", if r <= g { "yes" } else { "**no**" }),
            (Some(g), None) => format!("≤ {g}"),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {:.0} % | {verdict} |",
            row.name,
            row.label,
            row.threads,
            figure(row.ferrograd, &row.unit),
            row.pytorch.map_or("–".to_owned(), |v| figure(v, &row.unit)),
            row.ratio.map_or("–".to_owned(), |r| format!("{r:.3}×")),
            100.0 * row.spread,
        );
    }
    if !with_torch {
        table.push_str("\n(spread: of ferrograd's figure over the rounds, without PyTorch)\n");
    } else {
        table.push_str(
            "\nratio: ferrograd / PyTorch, the median of the rounds' ratios (below 1: ferrograd faster or \
             smaller); spread: (max − min) / median of those ratios.\n",
        );
    }
    table
}

/// Draws one bar per row with a ratio on a log scale (ratio 1 in the middle), coloured
/// by thread count, with each goal as a black tick; no text, so no fonts are needed.
fn draw_ratios(path: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    let bars: Vec<&Row> = rows.iter().filter(|r| r.ratio.is_some()).collect();
    let size = (((bars.len() as u32) * 24 + 40).max(400), 400u32);
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    draw_bars(&mut pixels, size, &bars)?;
    crate::png::write_rgb(path, size, &pixels)?;
    Ok(())
}

/// [`draw_ratios`]' drawing, into `pixels` (RGB, `size.0 × size.1`).
fn draw_bars(pixels: &mut [u8], (width, height): (u32, u32), bars: &[&Row]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let root = BitMapBackend::with_buffer(pixels, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    // log10 of the ratio, from 0.001× to 10×, mapped to pixel rows.
    let (low, high) = (-3.0f64, 1.0f64);
    let (top, bottom) = (20i32, height as i32 - 20);
    let y = |ratio: f64| {
        let l = ratio.max(1e-9).log10().clamp(low, high);
        bottom - ((l - low) / (high - low) * f64::from(bottom - top)).round() as i32
    };
    for decade in [0.001, 0.01, 0.1, 10.0] {
        root.draw(&PathElement::new(
            [(10, y(decade)), (width as i32 - 10, y(decade))],
            BLACK.mix(0.15),
        ))?;
    }
    root.draw(&PathElement::new(
        [(10, y(1.0)), (width as i32 - 10, y(1.0))],
        BLACK.stroke_width(2),
    ))?;
    let colour = |threads: usize| match THREADS.iter().position(|&t| t == threads) {
        Some(0) => RGBColor(31, 119, 180),
        Some(_) => RGBColor(255, 127, 14),
        None => RGBColor(120, 120, 120),
    };
    for (i, row) in bars.iter().enumerate() {
        let x = 20 + 24 * i as i32;
        let ratio = row.ratio.unwrap_or(1.0);
        // At least 2 pixels, so that a ratio near 1 still shows which side it is on.
        let (a, b) = (y(1.0), y(ratio));
        let (upper, lower) = if b < a { (b.min(a - 2), a) } else { (a, b.max(a + 2)) };
        root.draw(&Rectangle::new(
            [(x, upper), (x + 18, lower)],
            colour(row.threads).filled(),
        ))?;
        if let Some(g) = goal(&row.name, &row.unit) {
            root.draw(&PathElement::new(
                [(x - 2, y(g)), (x + 20, y(g))],
                BLACK.stroke_width(2),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_as_the_benches_write_them() {
        let line = "train_b1\tMLP step, batch 1\tus\t2\t12.5\t50\t0.25\t0.1\t0.2";
        let row = Row::parse("nn_mlp", line).unwrap();
        assert_eq!(row.name, "nn_mlp/train_b1");
        assert_eq!(
            (row.threads, row.ferrograd, row.pytorch, row.ratio),
            (2, 12.5, Some(50.0), Some(0.25))
        );
        let alone = Row::parse("tape", "chain_traced\tchain\tus\t1\t3\t-\t-\t0.05\t0.1").unwrap();
        assert_eq!((alone.pytorch, alone.ratio), (None, None));
        assert!(Row::parse("tape", "too\tfew").is_err());
    }

    #[test]
    fn goals_follow_issue_13() {
        assert_eq!(goal("tape/chain_traced", "us"), Some(0.1));
        assert_eq!(goal("nn_mlp/infer_b1", "us"), Some(0.2));
        assert_eq!(goal("cpu_gaps/matmul_1024", "us"), Some(1.0));
        assert_eq!(goal("nn_mlp/rss_10000", "MB"), None);
    }

    #[test]
    fn figures_take_a_readable_unit() {
        assert_eq!(figure(12.345, "us"), "12.35 µs");
        assert_eq!(figure(35_189.0, "us"), "35.19 ms");
        assert_eq!(figure(4_200_000.0, "us"), "4.20 s");
        assert_eq!(figure(12.34, "MB"), "12.3 MB");
    }
}
