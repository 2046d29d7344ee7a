//! Batched matrix products.

use super::check::{Failure, Family, Report, Tolerance};
use super::compare::succeeded;
use super::inputs::{Random, Values, row_major};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout};
use ferrograd_device::view::describe;
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};

/// How a batch of matrices sits in its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matrices {
    /// Row-major matrices one after another.
    RowMajor,
    /// Column-major: the transpose of row-major, as a transposed operand is.
    Transposed,
    /// Each matrix a block of a larger one (a row and two columns more), the batch
    /// starting one matrix in: strides that are not the sizes, and an offset.
    Sliced,
    /// One row-major matrix for the whole batch (batch strides 0).
    SharedByBatch,
    /// One row repeated down each matrix (row stride 0), a matrix per batch index.
    RepeatedRow,
}

/// A batch of matrices on the host.
#[derive(Clone, Debug)]
struct HostMatrices<E> {
    data: Vec<E>,
    layout: MatrixLayout,
    placement: Matrices,
}

impl<E> HostMatrices<E> {
    fn describe(&self) -> String {
        format!(
            "{:?} (batch {}; row stride {}, column stride {}; in a buffer of {})",
            self.placement,
            describe(&self.layout.batch),
            self.layout.row_stride,
            self.layout.column_stride,
            self.data.len()
        )
    }
}

/// A batch of `rows × columns` matrices placed as `placement` says, its buffer filled
/// with `values`.
fn matrices<E: Dtype>(
    random: &mut Random,
    placement: Matrices,
    batch: &[usize],
    (rows, columns): (usize, usize),
    values: Values,
) -> HostMatrices<E> {
    let count: usize = batch.iter().product();
    let (row_stride, column_stride, matrix, offset) = match placement {
        Matrices::RowMajor | Matrices::SharedByBatch => (columns, 1, rows * columns, 0),
        Matrices::Transposed => (1, rows, rows * columns, 0),
        Matrices::Sliced => {
            let matrix = (rows + 1) * (columns + 2);
            (columns + 2, 1, matrix, matrix + columns + 2 + 1)
        }
        Matrices::RepeatedRow => (0, 1, columns, 0),
    };
    let (strides, len) = match placement {
        Matrices::SharedByBatch => (vec![0; batch.len()], matrix),
        Matrices::Sliced => (
            row_major(batch).iter().map(|s| s * matrix).collect(),
            (count + 1) * matrix,
        ),
        _ => (row_major(batch).iter().map(|s| s * matrix).collect(), count * matrix),
    };
    HostMatrices {
        data: random.values(len, values),
        layout: MatrixLayout {
            batch: Layout::from_parts(batch, &strides).with_offset(offset),
            row_stride,
            column_stride,
        },
        placement,
    }
}

/// `out` after `out = lhs · rhs + beta · out`, and whether the product succeeded.
fn gemm_run<E: Dtype, D: MatmulKernel<E>>(
    device: &D,
    dims: (usize, usize, usize),
    lhs: &HostMatrices<E>,
    rhs: &HostMatrices<E>,
    beta: E,
    out: &HostMatrices<E>,
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let (l, r) = (
            device.try_from_host(lhs.data.clone())?,
            device.try_from_host(rhs.data.clone())?,
        );
        let mut o = device.try_from_host(out.data.clone())?;
        let result = device.gemm_batched(
            dims,
            View::new(&l, lhs.layout),
            View::new(&r, rhs.layout),
            beta,
            ViewMut::new(&mut o, out.layout),
        );
        Ok((result, device.try_to_host(&o)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), out.data.clone()))
}

/// `(m, k, n)`: scalars, vectors (m or n of 1, the skinny kernels' cases), odd sizes
/// around vector widths, an empty inner dimension (the product is 0) and an empty
/// output.
const SIZES: [(usize, usize, usize); 10] = [
    (1, 1, 1),
    (2, 3, 4),
    (7, 5, 3),
    (3, 33, 2),
    (1, 7, 9),
    (9, 6, 1),
    (1, 5, 1),
    (17, 9, 8),
    (4, 0, 3),
    (0, 3, 2),
];

/// Placements for (lhs, rhs, out).
const TRIPLES: [(Matrices, Matrices, Matrices); 8] = [
    (Matrices::RowMajor, Matrices::RowMajor, Matrices::RowMajor),
    (Matrices::Transposed, Matrices::RowMajor, Matrices::RowMajor),
    (Matrices::RowMajor, Matrices::Transposed, Matrices::Transposed),
    (Matrices::Transposed, Matrices::Transposed, Matrices::Sliced),
    (Matrices::Sliced, Matrices::SharedByBatch, Matrices::RowMajor),
    (Matrices::SharedByBatch, Matrices::Sliced, Matrices::Transposed),
    (Matrices::RepeatedRow, Matrices::RowMajor, Matrices::Sliced),
    (Matrices::RowMajor, Matrices::RepeatedRow, Matrices::RowMajor),
];

/// Batched products `out = lhs · rhs + beta · out` over sizes from 1 × 1 × 1 to
/// 17 × 9 × 8 (vectors, odd sizes, an empty inner dimension, an empty output), batches
/// of no axis, one and two, operands row-major, transposed, sliced with an offset,
/// shared by the batch (stride 0) or repeating a row, into outputs row-major,
/// transposed or sliced; with beta 0 (the output filled with NaN first, which must not
/// be read) and beta 1. The whole output buffer is compared, so a write outside the
/// layout is caught. Bad arguments: an operand past its buffer, an output shared by the
/// batch or whose rows overlap, batch dims that disagree (the output must be left as
/// it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn matmul_kernel<E: Dtype, D: MatmulKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: MatmulKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("matmul", tolerance);
    let mut random = Random::new(18);
    let batches: [&[usize]; 3] = [&[], &[3], &[2, 2]];
    for (m, k, n) in SIZES {
        for batch in batches {
            for (lhs_placement, rhs_placement, out_placement) in TRIPLES {
                let lhs = matrices::<E>(&mut random, lhs_placement, batch, (m, k), Values::Finite);
                let rhs = matrices::<E>(&mut random, rhs_placement, batch, (k, n), Values::Finite);
                for beta in [E::ZERO, E::ONE] {
                    let values = if beta == E::ZERO {
                        Values::Specials
                    } else {
                        Values::Finite
                    };
                    let mut out = matrices::<E>(&mut random, out_placement, batch, (m, n), values);
                    if beta == E::ZERO {
                        out.data.fill(E::from_f64(f64::NAN));
                    }
                    let case = format!(
                        "(m, k, n) = ({m}, {k}, {n}), beta {beta:?}, lhs {}, rhs {}, out {}",
                        lhs.describe(),
                        rhs.describe(),
                        out.describe()
                    );
                    family.check(
                        "matmul",
                        &case,
                        succeeded(gemm_run(&cpu, (m, k, n), &lhs, &rhs, beta, &out)),
                        succeeded(gemm_run(device, (m, k, n), &lhs, &rhs, beta, &out)),
                    )?;
                }
            }
        }
    }

    // (3, 2, 4)·(4, 5) into (3, 2, 5), as in the CPU's bad-layout tests.
    let dims = (2, 4, 5);
    let lhs = matrices::<E>(&mut random, Matrices::RowMajor, &[3], (2, 4), Values::Finite);
    let rhs = matrices::<E>(&mut random, Matrices::SharedByBatch, &[3], (4, 5), Values::Finite);
    let out = matrices::<E>(&mut random, Matrices::RowMajor, &[3], (2, 5), Values::Finite);
    let with = |host: &HostMatrices<E>, layout: MatrixLayout| HostMatrices { layout, ..host.clone() };
    let batch = |stride: usize| Layout::from_parts(&[3], &[stride]);
    let lhs_past = with(
        &lhs,
        MatrixLayout {
            batch: batch(9),
            ..lhs.layout
        },
    );
    let rhs_past = with(
        &rhs,
        MatrixLayout {
            batch: batch(1),
            ..rhs.layout
        },
    );
    let out_shared = with(
        &out,
        MatrixLayout {
            batch: batch(0),
            ..out.layout
        },
    );
    let out_overlapping = with(
        &out,
        MatrixLayout {
            row_stride: 2,
            ..out.layout
        },
    );
    let out_two = with(
        &out,
        MatrixLayout {
            batch: Layout::from_parts(&[2], &[10]),
            ..out.layout
        },
    );
    for (lhs, rhs, out) in [
        (&lhs_past, &rhs, &out),
        (&lhs, &rhs_past, &out),
        (&lhs, &rhs, &out_shared),
        (&lhs, &rhs, &out_overlapping),
        (&lhs, &rhs, &out_two),
    ] {
        let case = format!(
            "(m, k, n) = (2, 4, 5), lhs {}, rhs {}, out {}",
            lhs.describe(),
            rhs.describe(),
            out.describe()
        );
        let (reference, _) = gemm_run(&cpu, dims, lhs, rhs, E::ONE, out);
        let (actual, after) = gemm_run(device, dims, lhs, rhs, E::ONE, out);
        family.refusal("matmul", &case, reference, actual)?;
        family.unchanged("matmul", &case, &out.data, &after)?;
    }
    Ok(family.finish())
}
