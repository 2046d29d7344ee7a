//! Indexing: gather, scatter-add, gather-add and one-hot.

use super::check::{Failure, Family, Report, Tolerance};
use super::compare::succeeded;
use super::elementwise::past_the_end;
use super::inputs::{Host, Placement, Random, Values, row_major};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::index::{GatherKernel, OneHotKernel, ScatterAddKernel};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};

/// The dims of the tensor indexed: one axis, several, a size-1 axis, an empty axis.
const INDEXED_DIMS: &[&[usize]] = &[&[5], &[4, 6], &[3, 1, 4], &[2, 3, 4, 2], &[0, 3]];

/// Placements for (indexed tensor, indices, values).
const TRIPLES: [(Placement, Placement, Placement); 5] = [
    (Placement::CONTIGUOUS, Placement::CONTIGUOUS, Placement::CONTIGUOUS),
    (Placement::PERMUTED, Placement::SLICED, Placement::BROADCAST_LEADING),
    (Placement::SLICED, Placement::BROADCAST_TRAILING, Placement::MIXED),
    (Placement::BROADCAST_LEADING, Placement::MIXED, Placement::PERMUTED),
    (Placement::MIXED, Placement::PERMUTED, Placement::SLICED),
];

/// Indices of `dims` that are constant over every axis after `axis` (the pattern of
/// `index_select` and embedding lookups, which kernels copy as runs), below `bound`.
fn constant_after_axis(random: &mut Random, dims: &[usize], axis: usize, bound: usize) -> Host<usize> {
    let heads: usize = dims[..=axis].iter().product();
    let mut strides = row_major(&dims[..=axis]);
    strides.resize(dims.len(), 0);
    Host {
        data: (0..heads).map(|_| random.below(bound)).collect(),
        layout: Layout::from_parts(dims, &strides),
        placement: "constant after the axis",
    }
}

/// Every case of an indexing kernel: the indexed dims, the axis, the indices' dims
/// (the indexed dims with `picks` on the axis), and the placements.
struct IndexCase<E> {
    axis: usize,
    data: Host<E>,
    index: Host<usize>,
    values: Host<E>,
}

fn index_cases<E: Dtype>(random: &mut Random) -> Vec<IndexCase<E>> {
    let mut cases = Vec::new();
    for dims in INDEXED_DIMS {
        for axis in 0..dims.len() {
            for picks in [0, 1, 3, 7] {
                let mut index_dims = dims.to_vec();
                index_dims[axis] = picks;
                let bound = dims[axis];
                if bound == 0 && index_dims.iter().product::<usize>() > 0 {
                    // No index is valid: a refusal, checked separately.
                    continue;
                }
                let bound = bound.max(1);
                let mut indices: Vec<Host<usize>> = TRIPLES
                    .iter()
                    .map(|&(_, index, _)| random.indices(index, &index_dims, bound))
                    .collect();
                indices.push(constant_after_axis(random, &index_dims, axis, bound));
                for (k, index) in indices.into_iter().enumerate() {
                    let (data, _, values) = TRIPLES[k % TRIPLES.len()];
                    // The run-copy pattern is fastest with dense operands: pair it so.
                    let (data, values) = if index.placement == "constant after the axis" {
                        (Placement::CONTIGUOUS, Placement::CONTIGUOUS)
                    } else {
                        (data, values)
                    };
                    cases.push(IndexCase {
                        axis,
                        data: random.tensor(data, dims, Values::Specials),
                        values: random.tensor(values, &index_dims, Values::Finite),
                        index,
                    });
                }
            }
        }
    }
    cases
}

fn gather_run<E: Dtype, D: GatherKernel<E>>(
    device: &D,
    input: &Host<E>,
    axis: usize,
    index: &Host<usize>,
) -> Result<Vec<E>, Error> {
    let (x, i) = (input.upload(device)?, index.upload(device)?);
    let out = device.gather("gather", View::new(&x, input.layout), axis, View::new(&i, index.layout))?;
    device.try_to_host(&out)
}

/// Gathers along each axis of inputs in several placements (dims with a size-1 and an
/// empty axis), at indices in several placements (broadcast ones, as `select` gives,
/// and indices constant after the axis, as `index_select` gives), picking 0, 1, 3 or 7
/// elements per line. Bad arguments: an index out of bounds, an input past its
/// buffer, an index of another rank.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn gather_kernel<E: Dtype, D: GatherKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: GatherKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("gather", tolerance);
    let mut random = Random::new(15);
    for case in index_cases::<E>(&mut random) {
        let described = format!(
            "axis {}, input {}, index {} holding {:?}",
            case.axis,
            case.data.describe(),
            case.index.describe(),
            case.index.data
        );
        family.check_exact(
            "gather",
            &described,
            gather_run(&cpu, &case.data, case.axis, &case.index),
            gather_run(device, &case.data, case.axis, &case.index),
        )?;
    }
    let (input, index, past, out_of_bounds) = bad_index_arguments::<E>();
    let rank_one = Host::contiguous(&[2], vec![0, 1]);
    for (input, index) in [(&input, &out_of_bounds), (&past, &index), (&input, &rank_one)] {
        let case = format!(
            "axis 1, input {}, index {} holding {:?}",
            input.describe(),
            index.describe(),
            index.data
        );
        family.refusal(
            "gather",
            &case,
            gather_run(&cpu, input, 1, index),
            gather_run(device, input, 1, index),
        )?;
    }
    Ok(family.finish())
}

/// A `(2, 3)` input, `(2, 2)` indices, the input past its buffer, and indices holding
/// one out of bounds (3, on an axis of 3).
fn bad_index_arguments<E: Dtype>() -> (Host<E>, Host<usize>, Host<E>, Host<usize>) {
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    let index = Host::contiguous(&[2, 2], vec![0, 2, 1, 0]);
    let out_of_bounds = Host::contiguous(&[2, 2], vec![0, 2, 3, 0]);
    (input, index, past, out_of_bounds)
}

/// `dst` after a scatter-add (`gather` false) or a gather-add, and whether it succeeded.
fn scatter_run<E: Dtype, D: ScatterAddKernel<E>>(
    device: &D,
    gather: bool,
    dst: &Host<E>,
    axis: usize,
    index: &Host<usize>,
    src: &Host<E>,
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let (s, i) = (src.upload(device)?, index.upload(device)?);
        let mut d = dst.upload(device)?;
        let (src_view, index_view) = (View::new(&s, src.layout), View::new(&i, index.layout));
        let dst_view = ViewMut::new(&mut d, dst.layout);
        let result = if gather {
            device.gather_add("gather_backward", src_view, axis, index_view, dst_view)
        } else {
            device.scatter_add("scatter_add", dst_view, axis, index_view, src_view)
        };
        Ok((result, device.try_to_host(&d)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), dst.data.clone()))
}

/// `scatter_add` into an existing destination in several placements (a broadcast one
/// accumulates), along each axis, from values and indices in several placements, with
/// repeated indices (which accumulate); and `gather_add`, the gather added into an
/// existing destination of the indices' dims. Bad arguments: an index out of bounds (the
/// destination must be left as it was), a destination past its buffer, values whose
/// dims are not the indices'.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn scatter_add_kernel<E: Dtype, D: ScatterAddKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: ScatterAddKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("scatter_add", tolerance);
    let mut random = Random::new(16);
    for case in index_cases::<E>(&mut random) {
        let IndexCase {
            axis,
            data,
            index,
            values,
        } = &case;
        let described = format!(
            "axis {axis}, data {}, index {} holding {:?}, values {}",
            data.describe(),
            index.describe(),
            index.data,
            values.describe()
        );
        family.check(
            "scatter_add",
            &described,
            succeeded(scatter_run(&cpu, false, data, *axis, index, values)),
            succeeded(scatter_run(device, false, data, *axis, index, values)),
        )?;
        family.check(
            "gather_add",
            &described,
            succeeded(scatter_run(&cpu, true, values, *axis, index, data)),
            succeeded(scatter_run(device, true, values, *axis, index, data)),
        )?;
    }
    let (input, index, past, out_of_bounds) = bad_index_arguments::<E>();
    let values = Host::contiguous(&[2, 2], vec![E::ONE; 4]);
    for (dst, index, values) in [
        (&input, &out_of_bounds, &values),
        (&past, &index, &values),
        (&input, &index, &input),
    ] {
        let case = format!(
            "axis 1, dst {}, index {} holding {:?}, values {}",
            dst.describe(),
            index.describe(),
            index.data,
            values.describe()
        );
        let (reference, _) = scatter_run(&cpu, false, dst, 1, index, values);
        let (actual, after) = scatter_run(device, false, dst, 1, index, values);
        family.refusal("scatter_add", &case, reference, actual)?;
        family.unchanged("scatter_add", &case, &dst.data, &after)?;
    }
    let past_values = Host {
        layout: Layout::from_parts(&[2, 2], &[2, 1]).with_offset(1),
        placement: "past the end",
        ..values.clone()
    };
    for (src, index, dst) in [(&input, &out_of_bounds, &values), (&input, &index, &past_values)] {
        let case = format!(
            "axis 1, src {}, index {} holding {:?}, dst {}",
            src.describe(),
            index.describe(),
            index.data,
            dst.describe()
        );
        let (reference, _) = scatter_run(&cpu, true, dst, 1, index, src);
        let (actual, after) = scatter_run(device, true, dst, 1, index, src);
        family.refusal("gather_add", &case, reference, actual)?;
        family.unchanged("gather_add", &case, &dst.data, &after)?;
    }
    Ok(family.finish())
}

fn one_hot_run<E: Dtype, D: OneHotKernel<E>>(device: &D, index: &Host<usize>, classes: usize) -> Result<Vec<E>, Error> {
    let i = index.upload(device)?;
    let out = device.one_hot(View::new(&i, index.layout), classes)?;
    device.try_to_host(&out)
}

/// One-hot encodings with 1, 5 and 33 classes (and 0 for no indices) of indices in
/// every placement, a scalar and an empty tensor among them. Bad arguments: an index
/// equal to the number of classes, indices past their buffer.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn one_hot_kernel<E: Dtype, D: OneHotKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: OneHotKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("one_hot", tolerance);
    let mut random = Random::new(17);
    let dims_list: &[&[usize]] = &[&[], &[0], &[7], &[2, 3], &[3, 1, 2]];
    for dims in dims_list {
        for placement in Placement::ALL {
            for classes in [1, 5, 33] {
                let index = random.indices(placement, dims, classes);
                let case = format!("{classes} classes, index {} holding {:?}", index.describe(), index.data);
                family.check_exact(
                    "one_hot",
                    &case,
                    one_hot_run::<E, _>(&cpu, &index, classes),
                    one_hot_run::<E, _>(device, &index, classes),
                )?;
            }
        }
    }
    let none = Host::contiguous(&[0], Vec::new());
    family.check_exact(
        "one_hot",
        "0 classes, index of dims (0,)",
        one_hot_run::<E, _>(&cpu, &none, 0),
        one_hot_run::<E, _>(device, &none, 0),
    )?;
    let index = Host::contiguous(&[4], vec![0, 2, 3, 1]);
    let past = Host {
        layout: Layout::from_parts(&[4], &[1]).with_offset(1),
        placement: "past the end",
        ..index.clone()
    };
    for (index, classes) in [(&index, 3), (&past, 4)] {
        let case = format!("{classes} classes, index {} holding {:?}", index.describe(), index.data);
        family.refusal(
            "one_hot",
            &case,
            one_hot_run::<E, _>(&cpu, index, classes),
            one_hot_run::<E, _>(device, index, classes),
        )?;
    }
    Ok(family.finish())
}
