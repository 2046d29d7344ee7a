//! Writes the impls of `ReduceShapeTo` and `ReduceShape`: one per (rank, set of axes),
//! 120 in all for ranks 1 to 6.
//!
//! They have to be written out per rank because the compiler infers the axes of
//! `x.sum::<Rank1<4>, _>()` only when the destination shape appears in the impl's
//! header. A generator keeps the rule in one readable loop instead of a wall of
//! hand-written (or macro-expanded) impls.

use std::fmt::Write;

fn main() {
    let mut out = String::new();
    for rank in 1..=6usize {
        let dims: Vec<String> = (0..rank).map(|i| format!("D{i}")).collect();
        let generics = dims.iter().map(|d| format!("{d}: Dim")).collect::<Vec<_>>().join(", ");
        let src = tuple(&dims);
        for mask in 1u32..(1 << rank) {
            let axes: Vec<usize> = (0..rank).filter(|i| mask & (1 << i) != 0).collect();
            let kept: Vec<String> = (0..rank)
                .filter(|i| mask & (1 << i) == 0)
                .map(|i| dims[i].clone())
                .collect();
            let dst = tuple(&kept);
            let axes_ty = axes_type(&axes);
            writeln!(out, "impl<{generics}> ReduceShapeTo<{dst}, {axes_ty}> for {src} {{}}").unwrap();
            writeln!(
                out,
                "impl<{generics}> ReduceShape<{axes_ty}> for {src} {{ type Reduced = {dst}; }}"
            )
            .unwrap();
        }
    }
    for rank in 1..=6usize {
        let dims: Vec<String> = (0..rank).map(|i| format!("D{i}")).collect();
        let generics = dims.iter().map(|d| format!("{d}: Dim")).collect::<Vec<_>>().join(", ");
        let src = tuple(&dims);
        for (i, d) in dims.iter().enumerate() {
            writeln!(out, "impl<{generics}> HasAxis<{i}> for {src} {{ type Dim = {d}; }}").unwrap();
        }
        if rank >= 2 {
            let names = ["I", "J", "K", "L", "M", "N"];
            let consts = names[..rank]
                .iter()
                .map(|n| format!("const {n}: usize"))
                .collect::<Vec<_>>()
                .join(", ");
            let params = names[..rank].join(", ");
            let bounds = names[..rank]
                .iter()
                .map(|n| format!("HasAxis<{n}>"))
                .collect::<Vec<_>>()
                .join(" + ");
            let permuted = names[..rank]
                .iter()
                .map(|n| format!("<Self as HasAxis<{n}>>::Dim"))
                .collect::<Vec<_>>();
            let axes_ty = format!("Axes{rank}<{params}>");
            writeln!(
                out,
                "impl<{generics}, {consts}> PermuteShape<{axes_ty}> for {src} where Self: {bounds} {{ type Permuted = {}; }}",
                tuple(&permuted)
            )
            .unwrap();
        }
    }
    // Unsqueeze: a size-1 axis inserted at I; concat: axis I made a run-time dim.
    for rank in 0..=6usize {
        let dims: Vec<String> = (0..rank).map(|i| format!("D{i}")).collect();
        let generics = dims.iter().map(|d| format!("{d}: Dim")).collect::<Vec<_>>().join(", ");
        let src = tuple(&dims);
        if rank < 6 {
            for i in 0..=rank {
                let mut inserted = dims.clone();
                inserted.insert(i, "Const<1>".to_string());
                writeln!(
                    out,
                    "impl<{generics}> InsertAxis<{i}> for {src} {{ type Inserted = {}; }}",
                    tuple(&inserted)
                )
                .unwrap();
            }
        }
        for i in 0..rank {
            let mut dynamic = dims.clone();
            dynamic[i] = "usize".to_string();
            writeln!(
                out,
                "impl<{generics}> DynamicAxis<{i}> for {src} {{ type Dynamic = {}; }}",
                tuple(&dynamic)
            )
            .unwrap();
        }
    }
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("reduce_impls.rs");
    std::fs::write(path, out).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}

fn tuple(dims: &[String]) -> String {
    match dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    }
}

fn axes_type(axes: &[usize]) -> String {
    let list = axes.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
    match axes.len() {
        1 => format!("Axis<{list}>"),
        n => format!("Axes{n}<{list}>"),
    }
}
