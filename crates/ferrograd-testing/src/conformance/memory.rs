//! Storage, random sampling, conversions and strided copies.

use super::check::{Failure, Family, Problem, Report, Tolerance};
use super::compare::succeeded;
use super::elementwise::past_the_end;
use super::inputs::{ELEMENTWISE_DIMS, Host, Placement, Random, Values, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::convert::{CastTo, ConvertKernel};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::dropout::DropoutKernel;
use ferrograd_device::{Dtype, Error, Layout, SampleKernel, Storage, Unit, View, ViewMut};
use rand::Rng;
use rand::distr::{Distribution, StandardUniform};

/// Buffer lengths: empty, one, and odd lengths around vector widths.
const LENGTHS: [usize; 5] = [0, 1, 7, 33, 257];

/// Allocation, filling, and the round trip through the host, for the element type `E`,
/// masks and indices: zeros, a fill value (NaN, −∞ and −0 among those for floats; the largest index),
/// a buffer for overwriting (only its length is specified), a fill of an existing
/// buffer, `from_host` then `to_host` of values with every special value (bit for bit,
/// a zero's sign included), an empty `Default` buffer, and a clone that does not share
/// memory with its original (a kernel writing into one must not change the other). The
/// tolerance is not used: stored values must come back as they were.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn storage<E: Dtype, D: Storage<E> + Storage<bool> + Storage<usize>>(
    device: &D,
    tolerance: Tolerance,
) -> Result<Report, Failure> {
    let mut family = Family::new("storage", tolerance);
    let mut random = Random::new(12);
    let floats: Vec<E> = random.values(300, Values::Specials);
    let fills = [1.5, f64::NAN, f64::NEG_INFINITY, -0.0].map(E::from_f64);
    storage_of(device, &mut family, &floats, &fills)?;
    storage_of(device, &mut family, &random.bools(300), &[true, false])?;
    let indices: Vec<usize> = (0..300).map(|_| random.below(1000)).chain([usize::MAX]).collect();
    storage_of(device, &mut family, &indices, &[7, usize::MAX])?;
    Ok(family.finish())
}

fn storage_of<T: Unit, D: Storage<T>>(
    device: &D,
    family: &mut Family,
    values: &[T],
    fills: &[T],
) -> Result<(), Failure> {
    let cpu = Cpu::default();
    let kernel = |what: &str| format!("Storage<{}>::{what}", T::NAME);
    let empty = D::Vec::default();
    family.check_identical(
        &kernel("Vec::default"),
        "the length of an empty buffer",
        Ok(vec![0]),
        Ok(vec![D::len(&empty)]),
    )?;
    for len in LENGTHS {
        let case = format!("{len} elements");
        family.check_identical(&kernel("try_alloc_zeros"), &case, zeros(&cpu, len), zeros(device, len))?;
        family.check_identical(
            &kernel("try_alloc_for_overwrite"),
            &format!("{case}: the length, twice (Storage::len, then try_to_host)"),
            for_overwrite::<T, _>(&cpu, len),
            for_overwrite::<T, _>(device, len),
        )?;
        for &fill in fills {
            let case = format!("{len} elements of {fill:?}");
            family.check_identical(
                &kernel("try_alloc_filled"),
                &case,
                filled(&cpu, len, fill),
                filled(device, len, fill),
            )?;
            family.check_identical(
                &kernel("try_fill"),
                &case,
                fill_existing(&cpu, &values[..len], fill),
                fill_existing(device, &values[..len], fill),
            )?;
        }
        family.check_identical(
            &kernel("try_from_host then try_to_host"),
            &case,
            round_trip(&cpu, &values[..len]),
            round_trip(device, &values[..len]),
        )?;
        if let Some(&fill) = fills.first() {
            family.check_identical(
                &kernel("Vec::clone"),
                &format!("{case}: the original after filling its clone with {fill:?}"),
                clone_then_fill(&cpu, &values[..len], fill),
                clone_then_fill(device, &values[..len], fill),
            )?;
        }
    }
    // Values past the first `LENGTHS`' largest (the largest index, say) round trip too.
    family.check_identical(
        &kernel("try_from_host then try_to_host"),
        &format!("{} elements", values.len()),
        round_trip(&cpu, values),
        round_trip(device, values),
    )?;
    Ok(())
}

fn zeros<T: Unit, D: Storage<T>>(device: &D, len: usize) -> Result<Vec<T>, Error> {
    device.try_to_host(&device.try_alloc_zeros(len)?)
}

fn for_overwrite<T: Unit, D: Storage<T>>(device: &D, len: usize) -> Result<Vec<usize>, Error> {
    let buffer = device.try_alloc_for_overwrite(len)?;
    Ok(vec![D::len(&buffer), device.try_to_host(&buffer)?.len()])
}

fn filled<T: Unit, D: Storage<T>>(device: &D, len: usize, value: T) -> Result<Vec<T>, Error> {
    device.try_to_host(&device.try_alloc_filled(len, value)?)
}

fn fill_existing<T: Unit, D: Storage<T>>(device: &D, values: &[T], value: T) -> Result<Vec<T>, Error> {
    let mut buffer = upload(device, values)?;
    device.try_fill(&mut buffer, value)?;
    device.try_to_host(&buffer)
}

fn round_trip<T: Unit, D: Storage<T>>(device: &D, values: &[T]) -> Result<Vec<T>, Error> {
    let buffer = upload(device, values)?;
    if D::len(&buffer) != values.len() {
        return Err(Error::InvalidArgument {
            op: "Storage::len",
            message: format!("{} elements, {} were stored", D::len(&buffer), values.len()),
        });
    }
    device.try_to_host(&buffer)
}

fn clone_then_fill<T: Unit, D: Storage<T>>(device: &D, values: &[T], value: T) -> Result<Vec<T>, Error> {
    let original = upload(device, values)?;
    let mut copy = original.clone();
    device.try_fill(&mut copy, value)?;
    device.try_to_host(&original)
}

/// Uniform in `[low, high)`, drawn as an `f64` and rounded to `E` (so `high` itself may
/// come out in `f32`).
#[derive(Clone, Copy, Debug)]
struct UniformRange {
    low: f64,
    high: f64,
}

impl<E: Dtype> Distribution<E> for UniformRange {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> E {
        let unit: f64 = StandardUniform.sample(rng);
        E::from_f64(self.low + (self.high - self.low) * unit)
    }
}

/// Always the same value: a device must sample through the distribution it is given.
#[derive(Clone, Copy, Debug)]
struct Constant(f64);

impl<E: Dtype> Distribution<E> for Constant {
    fn sample<R: Rng + ?Sized>(&self, _rng: &mut R) -> E {
        E::from_f64(self.0)
    }
}

/// 1 with probability `p`, else 0.
#[derive(Clone, Copy, Debug)]
struct Coin {
    p: f64,
}

impl<E: Dtype> Distribution<E> for Coin {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> E {
        let unit: f64 = StandardUniform.sample(rng);
        if unit < self.p { E::ONE } else { E::ZERO }
    }
}

/// The mean and the (population) variance of `values`.
fn moments<E: Dtype>(values: &[E]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|v| v.to_f64()).sum::<f64>() / n;
    let variance = values.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
    (mean, variance)
}

/// A failure of the sampling family.
fn distribution_failure(case: &str, message: String) -> Failure {
    Failure {
        kernel: "try_sample".into(),
        case: case.into(),
        problem: Problem::Distribution(message),
    }
}

/// `len` draws of `distribution` on `device`, copied to the host, or the failure naming
/// `case`.
fn draw<E: Dtype, D: SampleKernel<E>, Dist: Distribution<E>>(
    device: &D,
    case: &str,
    len: usize,
    distribution: Dist,
) -> Result<Vec<E>, Failure> {
    let values = device
        .try_sample(len, distribution)
        .and_then(|buffer| device.try_to_host(&buffer))
        .map_err(|error| distribution_failure(case, format!("the device failed: {error}")))?;
    if values.len() != len {
        return Err(distribution_failure(
            case,
            format!("{} values, {len} asked for", values.len()),
        ));
    }
    Ok(values)
}

/// Random sampling, checked for sanity rather than against the CPU's draws.
///
/// [`SampleKernel`] takes no seed: a device's generator is its own (seeded when the
/// device is made; a GPU's would be cuRAND or a counter-based one), so no device can be
/// asked for the CPU's numbers, and the suite does not. It checks what any correct
/// device gives: the length asked for (0 included); every value inside the support of
/// the distribution; a constant distribution's value everywhere (the device samples
/// through the distribution it is handed); the mean and variance of 4096 uniform
/// draws, and the mean of 4096 draws of a coin, within six standard errors (so a
/// correct device fails about once in 10⁸ runs); and two successive draws that differ
/// (the generator advances). The tolerance is not used.
///
/// # Errors
/// The first check `device` fails.
pub fn sample_kernel<E: Dtype, D: SampleKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure> {
    let fail = distribution_failure;
    let mut family = Family::new("sample", tolerance);
    for len in [0, 1, 7, 257] {
        let case = format!("{len} values uniform in [-1, 3)");
        let values: Vec<E> = draw(device, &case, len, UniformRange { low: -1.0, high: 3.0 })?;
        // Rounding to f32 may give the upper bound itself.
        if let Some(bad) = values.iter().find(|v| !(-1.0..=3.0).contains(&v.to_f64())) {
            return Err(fail(&case, format!("{bad:?} is outside [-1, 3]")));
        }
        family.count();
    }

    let case = "4096 values uniform in [0, 1)";
    let n = 4096.0f64;
    let values: Vec<E> = draw(device, case, 4096, UniformRange { low: 0.0, high: 1.0 })?;
    let (mean, variance) = moments(&values);
    // The variance of the sample variance of U(0, 1): (μ₄ − σ⁴) / n = (1/80 − 1/144) / n.
    let (mean_error, variance_error) = ((1.0 / 12.0 / n).sqrt(), ((1.0 / 80.0 - 1.0 / 144.0) / n).sqrt());
    if (mean - 0.5).abs() > 6.0 * mean_error || (variance - 1.0 / 12.0).abs() > 6.0 * variance_error {
        return Err(fail(
            case,
            format!("mean {mean} and variance {variance}; U(0, 1) has 0.5 and 1/12 = 0.0833"),
        ));
    }
    family.count();

    let case = "4096 draws of a coin that gives 1 with probability 0.25";
    let values: Vec<E> = draw(device, case, 4096, Coin { p: 0.25 })?;
    if let Some(bad) = values.iter().find(|v| v.to_f64() != 0.0 && v.to_f64() != 1.0) {
        return Err(fail(case, format!("{bad:?} is neither 0 nor 1")));
    }
    let (mean, _) = moments(&values);
    if (mean - 0.25).abs() > 6.0 * (0.25 * 0.75 / n).sqrt() {
        return Err(fail(case, format!("a mean of {mean}, expected 0.25")));
    }
    family.count();

    let case = "33 values of a constant distribution giving 2.5";
    let values: Vec<E> = draw(device, case, 33, Constant(2.5))?;
    if let Some(bad) = values.iter().find(|v| v.to_f64() != 2.5) {
        return Err(fail(case, format!("{bad:?}, not the distribution's value")));
    }
    family.count();

    let case = "two successive draws of 64 values uniform in [0, 1)";
    let first: Vec<E> = draw(device, case, 64, UniformRange { low: 0.0, high: 1.0 })?;
    let second: Vec<E> = draw(device, case, 64, UniformRange { low: 0.0, high: 1.0 })?;
    if first == second {
        return Err(fail(
            case,
            "the same values twice: the generator did not advance".into(),
        ));
    }
    if first.iter().all(|&v| v == first[0]) {
        return Err(fail(case, format!("64 times {:?}", first[0])));
    }
    family.count();
    Ok(family.finish())
}

/// Dropout masks, checked for sanity as [`sample_kernel`] checks sampling: each device
/// draws its own masks, so none is compared with the CPU's.
///
/// Checked: the length asked for (0 included); every value 0 or the scale; `p = 0`
/// keeps everything and `p = 1` nothing; the kept fraction of 4096 values at `p =
/// 0.25` within six standard errors of 0.75; two successive masks that differ; and
/// `p` outside `[0, 1]` (NaN included) an error. The tolerance is not used.
///
/// # Errors
/// The first check `device` fails.
pub fn dropout_kernel<E: Dtype, D: DropoutKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure> {
    let fail = |case: &str, message: String| Failure {
        kernel: "try_dropout_mask".into(),
        case: case.into(),
        problem: Problem::Distribution(message),
    };
    let mask = |case: &str, len: usize, p: f64| -> Result<Vec<E>, Failure> {
        let values = device
            .try_dropout_mask(len, p, E::from_f64(2.0))
            .and_then(|buffer| device.try_to_host(&buffer))
            .map_err(|error| fail(case, format!("the device failed: {error}")))?;
        if values.len() != len {
            return Err(fail(case, format!("{} values, {len} asked for", values.len())));
        }
        if let Some(bad) = values.iter().find(|v| v.to_f64() != 0.0 && v.to_f64() != 2.0) {
            return Err(fail(case, format!("{bad:?} is neither 0 nor the scale 2")));
        }
        Ok(values)
    };
    let kept = |values: &[E]| values.iter().filter(|v| v.to_f64() != 0.0).count();
    let mut family = Family::new("dropout", tolerance);
    for (len, p) in [(0, 0.5), (1, 0.5), (257, 0.0), (257, 1.0)] {
        let case = format!("{len} values at p = {p}");
        let values = mask(&case, len, p)?;
        if (p == 0.0 && kept(&values) != len) || (p == 1.0 && kept(&values) != 0) {
            return Err(fail(&case, format!("{} of {len} kept", kept(&values))));
        }
        family.count();
    }
    let case = "4096 values at p = 0.25";
    let values = mask(case, 4096, 0.25)?;
    let fraction = kept(&values) as f64 / 4096.0;
    if (fraction - 0.75).abs() > 6.0 * (0.25 * 0.75 / 4096.0f64).sqrt() {
        return Err(fail(case, format!("{fraction} kept, expected 0.75")));
    }
    family.count();
    let case = "two successive masks of 64 values at p = 0.5";
    if mask(case, 64, 0.5)? == mask(case, 64, 0.5)? {
        return Err(fail(case, "the same mask twice: the generator did not advance".into()));
    }
    family.count();
    for p in [-0.1, 1.5, f64::NAN] {
        let case = format!("p = {p}");
        if device.try_dropout_mask(4, p, E::ONE).is_ok() {
            return Err(fail(
                &case,
                "accepted; a probability outside [0, 1] must be an error".into(),
            ));
        }
        family.count();
    }
    Ok(family.finish())
}

/// A [`ConvertKernel`] for every conversion a tensor offers: between `f32` and `f64`
/// both ways, each to itself (a contiguous copy), and masks to either float. What
/// [`convert_kernel`] needs; implemented for every device that has them all.
pub trait EveryConvertKernel:
    ConvertKernel<f32, f64>
    + ConvertKernel<f64, f32>
    + ConvertKernel<f32, f32>
    + ConvertKernel<f64, f64>
    + ConvertKernel<bool, f32>
    + ConvertKernel<bool, f64>
{
}

impl<D> EveryConvertKernel for D where
    D: ConvertKernel<f32, f64>
        + ConvertKernel<f64, f32>
        + ConvertKernel<f32, f32>
        + ConvertKernel<f64, f64>
        + ConvertKernel<bool, f32>
        + ConvertKernel<bool, f64>
{
}

/// Values whose conversion to `f32` rounds, overflows, underflows to a subnormal or to
/// zero, or keeps a sign.
const CONVERSION_SPECIALS: [f64; 10] = [
    1e300,
    -1e300,
    1e-300,
    1e-40,
    0.1,
    16_777_217.0,
    3.402_823_466_385_288_6e38,
    -0.0,
    f64::NAN,
    f64::NEG_INFINITY,
];

/// Every conversion of [`EveryConvertKernel`], of inputs in every placement over the
/// element-wise dims, holding special values and values whose conversion rounds,
/// overflows or underflows. Conversions round once, so results must be identical to
/// the CPU's, a zero's sign included, whatever the tolerance. Bad layout: an input past
/// its buffer.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn convert_kernel<D: EveryConvertKernel>(device: &D, tolerance: Tolerance) -> Result<Report, Failure> {
    let mut family = Family::new("convert", tolerance);
    let mut random = Random::new(13);
    for dims in ELEMENTWISE_DIMS {
        for placement in Placement::ALL {
            let from_f64 = with_conversion_specials::<f64>(&mut random, placement, dims);
            let from_f32 = with_conversion_specials::<f32>(&mut random, placement, dims);
            let mask = random.mask(placement, dims);
            convert_case::<f64, f32, D>(device, &mut family, &from_f64)?;
            convert_case::<f64, f64, D>(device, &mut family, &from_f64)?;
            convert_case::<f32, f64, D>(device, &mut family, &from_f32)?;
            convert_case::<f32, f32, D>(device, &mut family, &from_f32)?;
            convert_case::<bool, f32, D>(device, &mut family, &mask)?;
            convert_case::<bool, f64, D>(device, &mut family, &mask)?;
        }
    }
    let past = Host {
        data: vec![1.0f64; 6],
        layout: past_the_end(),
        placement: "past the end",
    };
    let case = format!("f64 to f32 of {}", past.describe());
    family.refusal(
        "convert",
        &case,
        convert_run::<f64, f32, _>(&Cpu::default(), &past),
        convert_run::<f64, f32, _>(device, &past),
    )?;
    Ok(family.finish())
}

fn with_conversion_specials<E: Dtype>(random: &mut Random, placement: Placement, dims: &[usize]) -> Host<E> {
    let mut host = random.tensor::<E>(placement, dims, Values::Specials);
    for value in host.data.iter_mut() {
        if random.below(4) == 0 {
            *value = E::from_f64(CONVERSION_SPECIALS[random.below(CONVERSION_SPECIALS.len())]);
        }
    }
    host
}

fn convert_run<From: CastTo<To>, To: Unit, D: ConvertKernel<From, To>>(
    device: &D,
    input: &Host<From>,
) -> Result<Vec<To>, Error> {
    let x = device.try_from_host(input.data.clone())?;
    let out = device.convert(View::new(&x, input.layout))?;
    device.try_to_host(&out)
}

fn convert_case<From: CastTo<To>, To: Unit, D: ConvertKernel<From, To>>(
    device: &D,
    family: &mut Family,
    input: &Host<From>,
) -> Result<(), Failure>
where
    Cpu: ConvertKernel<From, To>,
{
    let case = format!("{} to {} of {}", From::NAME, To::NAME, input.describe());
    family.check_identical(
        "convert",
        &case,
        convert_run::<From, To, _>(&Cpu::default(), input),
        convert_run::<From, To, _>(device, input),
    )
}

/// A strided copy or accumulation, and the destination's buffer after it.
fn copy_run<E: Dtype, D: CopyKernel<E>>(
    device: &D,
    add: bool,
    src: &Host<E>,
    dst: &Host<E>,
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let s = src.upload(device)?;
        let mut d = dst.upload(device)?;
        let (src, dst_view) = (View::new(&s, src.layout), ViewMut::new(&mut d, dst.layout));
        let result = if add {
            device.add_strided(src, dst_view)
        } else {
            device.copy_strided(src, dst_view)
        };
        Ok((result, device.try_to_host(&d)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), dst.data.clone()))
}

/// `copy_strided` and `add_strided` from a source in every placement (a broadcast one
/// included) over the element-wise dims, holding special values, into an existing
/// destination: each placement that addresses every element once for a copy (whose
/// result must be identical), every placement for an accumulation (a broadcast one adds
/// each position once). The whole destination buffer is compared, so a write outside
/// the layout is caught. Bad layouts: a source or destination past its buffer, dims
/// that disagree, a copy into a destination that repeats elements (the destination
/// must be left as it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn copy_kernel<E: Dtype, D: CopyKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: CopyKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("copy", tolerance);
    let mut random = Random::new(14);
    for dims in ELEMENTWISE_DIMS {
        for src_placement in Placement::ALL {
            let src = random.tensor::<E>(src_placement, dims, Values::Specials);
            for dst_placement in Placement::ALL {
                let dst = random.tensor::<E>(dst_placement, dims, Values::Finite);
                let case = format!("src {}, dst {}", src.describe(), dst.describe());
                if Placement::UNIQUE.contains(&dst_placement) {
                    family.check_identical(
                        "copy_strided",
                        &case,
                        succeeded(copy_run(&cpu, false, &src, &dst)),
                        succeeded(copy_run(device, false, &src, &dst)),
                    )?;
                }
                family.check(
                    "add_strided",
                    &case,
                    succeeded(copy_run(&cpu, true, &src, &dst)),
                    succeeded(copy_run(device, true, &src, &dst)),
                )?;
            }
        }
    }
    let fits = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..fits.clone()
    };
    let other_dims = Host {
        layout: Layout::from_parts(&[3, 2], &[1, 3]),
        placement: "other dims",
        ..fits.clone()
    };
    let broadcast = Host {
        layout: Layout::from_parts(&[2, 3], &[0, 1]),
        placement: "broadcast",
        ..fits.clone()
    };
    let mut cases = vec![
        (&past, &fits, false),
        (&fits, &other_dims, false),
        (&fits, &broadcast, false),
    ];
    cases.extend([(&past, &fits, true), (&fits, &past, true), (&other_dims, &fits, true)]);
    for (src, dst, add) in cases {
        let kernel = if add { "add_strided" } else { "copy_strided" };
        let case = format!("src {}, dst {}", src.describe(), dst.describe());
        let (reference, _) = copy_run(&cpu, add, src, dst);
        let (actual, after) = copy_run(device, add, src, dst);
        family.refusal(kernel, &case, reference, actual)?;
        family.unchanged(kernel, &case, &dst.data, &after)?;
    }
    Ok(family.finish())
}
