//! Indexing ops: select, gather, index_select, scatter_add, one_hot, arange.
//!
//! Values are checked against naive loops over the logical (row-major) elements;
//! gradients against central finite differences in f64, of `sum(w · op(x))` with seeded
//! random weights `w`, so a gradient sent to the wrong element shows. Inputs and index
//! tensors are also views (permuted, sliced, broadcast), and indices repeat.

use ferrograd_autodiff::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

type Traced<S> = Tensor<S, f64, TestDevice, OwnedTape<f64, TestDevice>>;
type Loss = Tensor<Rank0, f64, TestDevice, OwnedTape<f64, TestDevice>>;

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// `sum(w · y)` with weights drawn from a generator seeded with `seed`.
fn weighted<S: Shape>(y: Traced<S>, seed: u64) -> Loss {
    let w: Tensor<S, f64, TestDevice> = seeded_test_device(seed).sample_normal_like(y.shape());
    (y * w).flatten().sum::<Rank0, _>()
}

/// Compares the gradient backward gives for `x` (a contiguous tensor) with central
/// finite differences of `f`.
fn check_gradient<S: Shape>(x: &Tensor<S, f64, TestDevice>, f: impl Fn(Traced<S>) -> Loss) -> Vec<f64> {
    let analytic = f(x.leaky_trace()).backward().get(x).as_vec();
    let values = x.as_vec();
    let dev = x.device().clone();
    let h = 1e-6;
    let eval = |i: usize, delta: f64| {
        let mut v = values.clone();
        v[i] += delta;
        f(dev.tensor_from_vec(v, *x.shape()).leaky_trace()).array()
    };
    for (i, &a) in analytic.iter().enumerate() {
        let numeric = (eval(i, h) - eval(i, -h)) / (2.0 * h);
        assert!(
            (a - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
            "gradient of element {i}: backward gives {a}, finite differences {numeric}"
        );
    }
    analytic
}

fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= 1e-12 * (1.0 + e.abs()), "element {i}: {a} vs {e}");
    }
}

/// The multi-index of row-major position `flat` in `dims`.
fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for axis in (0..dims.len()).rev() {
        index[axis] = flat % dims[axis];
        flat /= dims[axis];
    }
    index
}

/// The row-major position of a multi-index in `dims`.
fn ravel(index: &[usize], dims: &[usize]) -> usize {
    index.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// `out[p] = x[p with p[axis] = idx[p]]` over `idx_dims`.
fn naive_gather(x: &[f64], x_dims: &[usize], axis: usize, idx: &[usize], idx_dims: &[usize]) -> Vec<f64> {
    (0..idx.len())
        .map(|p| {
            let mut m = unravel(p, idx_dims);
            m[axis] = idx[p];
            x[ravel(&m, x_dims)]
        })
        .collect()
}

/// `base[p with p[axis] = idx[p]] += src[p]` over `idx_dims`.
fn naive_scatter_add(
    base: &[f64],
    dims: &[usize],
    axis: usize,
    idx: &[usize],
    idx_dims: &[usize],
    src: &[f64],
) -> Vec<f64> {
    let mut out = base.to_vec();
    for p in 0..idx.len() {
        let mut m = unravel(p, idx_dims);
        m[axis] = idx[p];
        out[ravel(&m, dims)] += src[p];
    }
    out
}

/// `out[m] = x[m with index_at(m) inserted at axis]` over `dims` without `axis`.
fn naive_select(x: &[f64], dims: &[usize], axis: usize, index_at: impl Fn(&[usize]) -> usize) -> Vec<f64> {
    let kept: Vec<usize> = (0..dims.len()).filter(|&a| a != axis).map(|a| dims[a]).collect();
    let count: usize = kept.iter().product();
    (0..count)
        .map(|p| {
            let m = unravel(p, &kept);
            let mut full = m.clone();
            full.insert(axis, index_at(&m));
            x[ravel(&full, dims)]
        })
        .collect()
}

/// Pseudo-random indices below `bound` (xorshift), reproducible.
fn random_indices(n: usize, bound: usize, seed: u64) -> Vec<usize> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % bound as u64) as usize
        })
        .collect()
}

fn scalar_index(dev: &TestDevice, i: usize) -> Tensor<Rank0, usize, TestDevice> {
    dev.tensor_from_vec(vec![i], ())
}

// ---------------------------------------------------------------------------------
// select
// ---------------------------------------------------------------------------------

#[test]
fn select_with_a_scalar_index_removes_the_axis() {
    let dev = seeded_test_device(1);
    let x: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    let (xv, dims) = (x.as_vec(), [2, 3, 4]);
    let a: Tensor<Rank2<3, 4>, f64, TestDevice> = x.clone().select::<0>(&scalar_index(&dev, 1));
    assert_close(&a.as_vec(), &naive_select(&xv, &dims, 0, |_| 1));
    let b: Tensor<Rank2<2, 4>, f64, TestDevice> = x.clone().select::<1>(&scalar_index(&dev, 2));
    assert_close(&b.as_vec(), &naive_select(&xv, &dims, 1, |_| 2));
    let c: Tensor<Rank2<2, 3>, f64, TestDevice> = x.clone().select::<2>(&scalar_index(&dev, 0));
    assert_close(&c.as_vec(), &naive_select(&xv, &dims, 2, |_| 0));
    // Rank 1 to a scalar.
    let v = dev.tensor([5.0f64, 6.0, 7.0]);
    assert_eq!(v.select::<0>(&scalar_index(&dev, 2)).array(), 7.0);
}

#[test]
fn select_one_index_per_row_and_per_element() {
    let dev = seeded_test_device(2);
    // (B, N) with (B,): the logit of each row's label.
    let logits = dev.tensor([[0.1f64, 0.2, 0.3], [1.1, 1.2, 1.3], [2.1, 2.2, 2.3], [3.1, 3.2, 3.3]]);
    let labels = dev.tensor([2usize, 0, 0, 1]);
    let picked: Tensor<Rank1<4>, f64, TestDevice> = logits.select::<1>(&labels);
    assert_eq!(picked.array(), [0.3, 1.1, 2.1, 3.2]);

    // Leading axes of a rank-3 tensor: x (2, 3, 4), idx (2,) along axis 1 → (2, 4).
    let x: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    let (xv, dims) = (x.as_vec(), [2, 3, 4]);
    let rows = [2usize, 1];
    let y: Tensor<Rank2<2, 4>, f64, TestDevice> = x.clone().select::<1>(&dev.tensor(rows));
    assert_close(&y.as_vec(), &naive_select(&xv, &dims, 1, |m| rows[m[0]]));

    // One index per element of the result: idx (2, 4) along axis 1.
    let full = random_indices(8, 3, 3);
    let idx = dev.tensor_from_vec(full.clone(), (Const::<2>, Const::<4>));
    let z: Tensor<Rank2<2, 4>, f64, TestDevice> = x.select::<1>(&idx);
    assert_close(&z.as_vec(), &naive_select(&xv, &dims, 1, |m| full[m[0] * 4 + m[1]]));
}

#[test]
fn select_reads_permuted_inputs_and_indices() {
    let dev = seeded_test_device(3);
    let base: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    // x (4, 2, 3), not contiguous.
    let x = base.permute::<Axes3<2, 0, 1>>();
    let (xv, dims) = (x.as_vec(), [4, 2, 3]);
    // Indices (4, 2) stored transposed.
    let idx_base = dev.tensor([[0usize, 2, 1, 1], [2, 2, 0, 1]]);
    let idx = idx_base.t();
    let iv = idx.as_vec();
    let y: Tensor<Rank2<4, 2>, f64, TestDevice> = x.clone().select::<2>(&idx);
    assert_close(&y.as_vec(), &naive_select(&xv, &dims, 2, |m| iv[m[0] * 2 + m[1]]));
    // Prefix indices (4,) read with stride 2 (a column of a transposed matrix).
    let col = dev
        .tensor([[1usize, 0], [0, 1], [1, 1], [0, 0]])
        .t()
        .slice((0..1, ..))
        .squeeze::<0>();
    assert_eq!(col.strides(), [2]);
    let cv = col.as_vec();
    let z: Tensor<Rank2<4, 3>, f64, TestDevice> = x.select::<1>(&col);
    assert_close(&z.as_vec(), &naive_select(&xv, &dims, 1, |m| cv[m[0]]));
}

#[test]
fn select_gradients_match_finite_differences() {
    let dev = seeded_test_device(4);
    let x: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.sample_normal();
    check_gradient(&x, |x| {
        weighted(
            x.permute::<Axes2<1, 0>>()
                .select::<0>(&dev.tensor([1usize, 1, 3]))
                .square(),
            10,
        )
    });
    check_gradient(&x, |x| weighted(x.select::<1>(&dev.tensor([3usize, 3, 0])), 11));
    let g = check_gradient(&x, |x| weighted(x.select::<0>(&scalar_index(&dev, 2)), 12));
    assert!(g[..8].iter().all(|&v| v == 0.0), "rows 0 and 1 are not selected");
    // A broadcast input: one row seen three times, so repeated indices pick the same
    // element and its gradient adds up.
    let row: Tensor<Rank1<4>, f64, TestDevice> = dev.sample_normal();
    let idx = dev.tensor([1usize, 1, 3]);
    let g = check_gradient(&row, |r| {
        weighted(r.broadcast::<Rank2<3, 4>, _>().select::<1>(&idx), 13)
    });
    let w: Tensor<Rank1<3>, f64, TestDevice> = seeded_test_device(13).sample_normal();
    let w = w.array();
    assert_close(&g, &[0.0, w[0] + w[1], 0.0, w[2]]);
}

#[test]
fn select_out_of_range_and_mismatched_indices_are_errors() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let e = x.clone().try_select::<1>(&scalar_index(&dev, 3)).unwrap_err();
    assert_eq!(e.to_string(), "select: index 3 is out of bounds for axis 1 of size 3");
    let e = x.clone().try_select::<0>(&dev.tensor([0usize, 1, 2])).unwrap_err();
    assert_eq!(e.to_string(), "select: index 2 is out of bounds for axis 0 of size 2");
    // Run-time dims that do not fit: 3 row indices for 2 rows.
    let y: Tensor<_, f64, TestDevice> = dev.zeros_like(&(2usize, Const::<3>));
    let e = y.try_select::<1>(&dev.tensor(vec![0usize, 1, 2])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }));
    assert_eq!(
        e.to_string(),
        "select: indices (3,) do not fit input (2, 3) along axis 1: expected (2,)"
    );
}

#[test]
#[should_panic(expected = "select: index 4 is out of bounds for axis 0 of size 2")]
fn select_panics_with_the_error_text() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let _ = x.select::<0>(&scalar_index(&dev, 4));
}

// ---------------------------------------------------------------------------------
// gather
// ---------------------------------------------------------------------------------

#[test]
fn gather_along_every_axis_matches_loops() {
    let dev = seeded_test_device(5);
    let x: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    let (xv, dims) = (x.as_vec(), [2, 3, 4]);

    let i0 = random_indices(5 * 3 * 4, 2, 1);
    let idx0 = dev.tensor_from_vec(i0.clone(), (Const::<5>, Const::<3>, Const::<4>));
    let y0 = x.clone().gather::<0, _>(&idx0);
    assert_close(&y0.as_vec(), &naive_gather(&xv, &dims, 0, &i0, &[5, 3, 4]));

    let i1 = random_indices(2 * 7 * 4, 3, 2);
    let idx1 = dev.tensor_from_vec(i1.clone(), (Const::<2>, Const::<7>, Const::<4>));
    let y1: Tensor<Rank3<2, 7, 4>, f64, TestDevice> = x.clone().gather(&idx1); // axis inferred
    assert_close(&y1.as_vec(), &naive_gather(&xv, &dims, 1, &i1, &[2, 7, 4]));

    let i2 = random_indices(2 * 3 * 2, 4, 3);
    let idx2 = dev.tensor_from_vec(i2.clone(), (Const::<2>, Const::<3>, Const::<2>));
    let y2 = x.gather::<2, _>(&idx2);
    assert_close(&y2.as_vec(), &naive_gather(&xv, &dims, 2, &i2, &[2, 3, 2]));
}

#[test]
fn gather_reads_views_of_inputs_and_indices() {
    let dev = seeded_test_device(6);
    let base: Tensor<Rank2<4, 3>, f64, TestDevice> = dev.sample_normal();
    // x (3, 4) transposed, idx (3, 5) transposed from (5, 3).
    let x = base.t();
    let iv_base = random_indices(15, 4, 4);
    let idx = dev.tensor_from_vec(iv_base, (Const::<5>, Const::<3>)).t();
    let y = x.clone().gather::<1, _>(&idx);
    assert_close(
        &y.as_vec(),
        &naive_gather(&x.as_vec(), &[3, 4], 1, &idx.as_vec(), &[3, 5]),
    );

    // Indices sliced out of a larger tensor: an offset into their buffer.
    let idx = dev
        .tensor([[7usize, 7], [3, 0], [1, 2], [0, 0]])
        .slice((1.., ..))
        .realize::<Rank2<3, 2>>();
    let y = x.clone().gather::<1, _>(&idx);
    assert_close(
        &y.as_vec(),
        &naive_gather(&x.as_vec(), &[3, 4], 1, &[3, 0, 1, 2, 0, 0], &[3, 2]),
    );

    // A sliced input with a run-time dim: x[:, 1..4] of a (3, 5) matrix.
    let wide: Tensor<Rank2<3, 5>, f64, TestDevice> = dev.sample_normal();
    let sliced = wide.slice((.., 1..4));
    let idx = dev.tensor([[2usize, 0], [1, 1], [0, 2]]);
    let y = sliced.clone().gather::<1, _>(&idx);
    assert_close(
        &y.as_vec(),
        &naive_gather(&sliced.as_vec(), &[3, 3], 1, &idx.as_vec(), &[3, 2]),
    );

    // A broadcast input: one row repeated.
    let row = dev.tensor([1.0f64, 2.0, 3.0]);
    let rows = row.broadcast::<Rank2<2, 3>, _>();
    let idx = dev.tensor([[2usize, 2, 0, 1], [0, 1, 2, 2]]);
    assert_eq!(
        rows.gather::<1, _>(&idx).array(),
        [[3.0, 3.0, 1.0, 2.0], [1.0, 2.0, 3.0, 3.0]]
    );
}

#[test]
fn gather_gradients_accumulate_over_repeated_indices() {
    let dev = seeded_test_device(7);
    let x: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.sample_normal();
    let idx = dev.tensor([[0usize, 0, 0, 3, 3], [1, 2, 1, 2, 1], [3, 3, 3, 3, 3]]);
    check_gradient(&x, |x| weighted(x.gather::<1, _>(&idx), 20));
    let idx0 = dev.tensor([[0usize, 2, 2, 1], [2, 2, 2, 2]]);
    check_gradient(&x, |x| weighted(x.gather::<0, _>(&idx0).tanh(), 21));

    // Plain sum: each element's gradient is the number of times it is picked.
    let ones = dev.tensor([[0usize, 0, 3], [1, 1, 1], [2, 0, 2]]);
    let g = x
        .leaky_trace()
        .gather::<1, _>(&ones)
        .flatten()
        .sum::<Rank0, _>()
        .backward()
        .get(&x);
    assert_eq!(
        g.array(),
        [[2.0, 0.0, 0.0, 1.0], [0.0, 3.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0]]
    );
}

#[test]
fn gather_gradients_of_views_land_in_the_base_tensor() {
    let dev = seeded_test_device(8);
    // Permuted input, permuted indices.
    let x: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    let idx = dev
        .tensor_from_vec(random_indices(24, 2, 9), (Const::<3>, Const::<2>, Const::<4>))
        .permute::<Axes3<1, 0, 2>>();
    check_gradient(&x, |x| {
        weighted(
            x.permute::<Axes3<1, 2, 0>>()
                .gather::<2, _>(&idx.clone().permute::<Axes3<1, 2, 0>>()),
            22,
        )
    });
    // Sliced input.
    let wide: Tensor<Rank2<3, 5>, f64, TestDevice> = dev.sample_normal();
    let idx = dev.tensor([[2usize, 0, 2], [1, 1, 1], [0, 2, 0]]);
    let g = check_gradient(&wide, |w| weighted(w.slice((.., 1..4)).gather::<1, _>(&idx), 23));
    for r in 0..3 {
        assert_eq!(
            (g[r * 5], g[r * 5 + 4]),
            (0.0, 0.0),
            "columns 0 and 4 are outside the slice"
        );
    }
    // Broadcast input: the gradient of the repeated row sums over rows.
    let row: Tensor<Rank1<3>, f64, TestDevice> = dev.sample_normal();
    let idx = dev.tensor([[2usize, 2, 0, 1], [0, 1, 2, 2]]);
    check_gradient(&row, |r| {
        weighted(r.broadcast::<Rank2<2, 3>, _>().gather::<1, _>(&idx), 24)
    });
}

#[test]
fn gather_errors_name_the_op_index_axis_and_size() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 5>, f64, TestDevice> = dev.zeros();
    let e = x
        .clone()
        .try_gather::<1, _>(&dev.tensor([[0usize, 7], [1, 2]]))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { op: "gather", .. }));
    assert_eq!(e.to_string(), "gather: index 7 is out of bounds for axis 1 of size 5");
    // Run-time dims that disagree on the other axis.
    let y: Tensor<_, f64, TestDevice> = dev.zeros_like(&(2usize, Const::<3>));
    let idx = dev.tensor_from_vec(vec![0usize; 6], (3usize, Const::<2>));
    let e = y.try_gather::<1, _>(&idx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "gather: indices (3, 2) and input (2, 3) must agree on every axis but 1"
    );
}

#[test]
#[should_panic(expected = "gather: index 2 is out of bounds for axis 0 of size 2")]
fn gather_panics_with_the_error_text() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 5>, f64, TestDevice> = dev.zeros();
    let _ = x.gather::<0, _>(&dev.tensor([[0usize, 1, 2, 1, 0]]));
}

// ---------------------------------------------------------------------------------
// index_select
// ---------------------------------------------------------------------------------

#[test]
fn index_select_keeps_const_dims_and_repeats() {
    let dev = seeded_test_device(9);
    let x: Tensor<Rank3<3, 2, 4>, f64, TestDevice> = dev.sample_normal();
    let (xv, dims) = (x.as_vec(), [3, 2, 4]);
    let rows = [2usize, 0, 2, 2, 1];
    let y: Tensor<Rank3<5, 2, 4>, f64, TestDevice> = x.clone().index_select::<0, _>(&dev.tensor(rows));
    let mut reference = Vec::new();
    for &r in &rows {
        reference.extend_from_slice(&xv[r * 8..(r + 1) * 8]);
    }
    assert_close(&y.as_vec(), &reference);

    // A run-time number of indices along the last axis.
    let cols = vec![3usize, 3, 0];
    let z = x.index_select::<2, _>(&dev.tensor(cols.clone()));
    let _: &Tensor<(Const<3>, Const<2>, usize), f64, TestDevice> = &z;
    assert_eq!(z.dims(), [3, 2, 3]);
    let idx_full: Vec<usize> = (0..18).map(|p| cols[p % 3]).collect();
    assert_close(&z.as_vec(), &naive_gather(&xv, &dims, 2, &idx_full, &[3, 2, 3]));
}

#[test]
fn index_select_reads_views_and_accumulates_gradients() {
    let dev = seeded_test_device(10);
    let base: Tensor<Rank2<4, 5>, f64, TestDevice> = dev.sample_normal();
    // A sliced, transposed input and indices read with stride 2.
    let x = base.clone().slice((1..4, ..)).t();
    assert_eq!(x.dims(), [5, 3]);
    let idx = dev
        .tensor([[1usize, 9], [0, 9], [1, 9], [2, 9]])
        .t()
        .slice((0..1, ..))
        .squeeze::<0>();
    assert_eq!(idx.strides(), [2]);
    let y: Tensor<(Const<5>, Const<4>), f64, TestDevice> = x.clone().index_select::<1, _>(&idx);
    let (xv, iv) = (x.as_vec(), idx.as_vec());
    let reference: Vec<f64> = (0..20).map(|p| xv[(p / 4) * 3 + iv[p % 4]]).collect();
    assert_close(&y.as_vec(), &reference);

    // Indices that start one element into their buffer (a slice with an offset).
    let shifted = dev.tensor([9usize, 2, 0, 2]).slice((1..,));
    let y = x.clone().index_select::<1, _>(&shifted);
    let reference: Vec<f64> = (0..15).map(|p| xv[(p / 3) * 3 + [2, 0, 2][p % 3]]).collect();
    assert_close(&y.as_vec(), &reference);
    let g = check_gradient(&base, |b| {
        weighted(b.slice((1..4, ..)).t().index_select::<1, _>(&idx), 30)
    });
    assert!(g[..5].iter().all(|&v| v == 0.0), "row 0 is outside the slice");
    let embed: Tensor<Rank2<4, 3>, f64, TestDevice> = dev.sample_normal();
    let tokens = dev.tensor([3usize, 1, 3, 3, 0, 1]);
    check_gradient(&embed, |e| weighted(e.index_select::<0, _>(&tokens).square(), 31));
}

#[test]
fn index_select_with_no_indices_is_empty() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.ones();
    let y = x.leaky_trace().index_select::<0, _>(&dev.tensor(Vec::<usize>::new()));
    assert_eq!(y.dims(), [0, 3]);
    let g = y.flatten().sum::<Rank0, _>().backward().get(&x);
    assert_eq!(g.array(), [[0.0; 3]; 2]);
}

#[test]
fn index_select_errors() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let e = x.try_index_select::<1, _>(&dev.tensor([0usize, 3, 1])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "index_select: index 3 is out of bounds for axis 1 of size 3"
    );
}

// ---------------------------------------------------------------------------------
// scatter_add
// ---------------------------------------------------------------------------------

#[test]
fn scatter_add_accumulates_repeated_indices() {
    let dev = seeded_test_device(11);
    let base: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    let (bv, dims) = (base.as_vec(), [2, 3, 4]);
    let iv = random_indices(2 * 6 * 4, 3, 5);
    let idx = dev.tensor_from_vec(iv.clone(), (Const::<2>, Const::<6>, Const::<4>));
    let src: Tensor<Rank3<2, 6, 4>, f64, TestDevice> = dev.sample_normal();
    let y = base.clone().scatter_add::<1, _, _>(&idx, src.clone());
    assert_close(
        &y.as_vec(),
        &naive_scatter_add(&bv, &dims, 1, &iv, &[2, 6, 4], &src.as_vec()),
    );
    // The input is unchanged (its buffer was shared, so it was copied).
    assert_close(&base.as_vec(), &bv);

    // Zeros + src with the axis inferred; a unique contiguous input is reused.
    let zeros: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let counts = zeros.scatter_add(
        &dev.tensor([[0usize, 0, 2, 0, 2], [1, 1, 1, 1, 1]]),
        dev.ones::<Rank2<2, 5>>(),
    );
    assert_eq!(counts.array(), [[3.0, 0.0, 2.0], [0.0, 5.0, 0.0]]);
}

#[test]
fn scatter_add_reads_views() {
    let dev = seeded_test_device(12);
    // Permuted input (4, 3), permuted source and indices (4, 5) along axis 1.
    let base: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.sample_normal();
    let x = base.t();
    let idx = dev
        .tensor_from_vec(random_indices(20, 3, 6), (Const::<5>, Const::<4>))
        .t();
    let src_base: Tensor<Rank2<5, 4>, f64, TestDevice> = dev.sample_normal();
    let src = src_base.t();
    let y = x.clone().scatter_add::<1, _, _>(&idx, src.clone());
    let expected = naive_scatter_add(&x.as_vec(), &[4, 3], 1, &idx.as_vec(), &[4, 5], &src.as_vec());
    assert_close(&y.as_vec(), &expected);

    // A broadcast input.
    let row = dev.tensor([1.0f64, 2.0, 3.0]);
    let y = row
        .broadcast::<Rank2<2, 3>, _>()
        .scatter_add::<1, _, _>(&dev.tensor([[2usize], [0]]), dev.tensor([[10.0], [20.0]]));
    assert_eq!(y.array(), [[1.0, 2.0, 13.0], [21.0, 2.0, 3.0]]);
}

#[test]
fn scatter_add_gradients_for_input_and_source() {
    let dev = seeded_test_device(13);
    let x: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.sample_normal();
    let src: Tensor<Rank2<3, 6>, f64, TestDevice> = dev.sample_normal();
    let idx = dev.tensor([[0usize, 0, 3, 3, 3, 1], [2, 2, 2, 2, 0, 1], [1, 0, 1, 0, 1, 0]]);
    let gx = check_gradient(&x, |x| {
        weighted(x.scatter_add::<1, _, _>(&idx, src.clone()).square(), 40)
    });
    let gs = check_gradient(&src, |s| {
        weighted(x.clone().scatter_add::<1, _, _>(&idx, s).square(), 40)
    });
    // Both traced at once, on two tapes that merge.
    let loss = weighted(
        x.leaky_trace().scatter_add::<1, _, _>(&idx, src.leaky_trace()).square(),
        40,
    );
    let grads = loss.backward();
    assert_close(&grads.get(&x).as_vec(), &gx);
    assert_close(&grads.get(&src).as_vec(), &gs);

    // Views: a permuted input, a sliced and transposed source, permuted indices.
    let idx_t = dev
        .tensor_from_vec(random_indices(12, 3, 7), (Const::<4>, Const::<3>))
        .t();
    let wide: Tensor<Rank2<5, 3>, f64, TestDevice> = dev.sample_normal();
    check_gradient(&x, |x| {
        weighted(
            x.t()
                .scatter_add::<0, _, _>(&idx_t.clone().t(), wide.clone().slice((1..5, ..)).realize()),
            41,
        )
    });
    check_gradient(&wide, |w| {
        let s = w.slice((1..5, ..)).realize::<Rank2<4, 3>>();
        weighted(x.clone().t().scatter_add::<0, _, _>(&idx_t.clone().t(), s), 42)
    });
}

#[test]
fn scatter_add_errors() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let idx = dev.tensor([[0usize, 3], [1, 1]]);
    let e = x
        .clone()
        .try_scatter_add::<1, _, _>(&idx, dev.ones::<Rank2<2, 2>>())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scatter_add: index 3 is out of bounds for axis 1 of size 3"
    );
    // Run-time shapes: source and indices differ.
    let idx = dev.tensor_from_vec(vec![0usize; 4], (2usize, 2usize));
    let src: Tensor<_, f64, TestDevice> = dev.ones_like(&(2usize, 1usize));
    let y: Tensor<_, f64, TestDevice> = dev.zeros_like(&(2usize, 3usize));
    let e = y.clone().try_scatter_add::<1, _, _>(&idx, src).unwrap_err();
    assert_eq!(
        e.to_string(),
        "scatter_add: indices (2, 2) and source (2, 1) must have one shape"
    );
    let e = y
        .try_scatter_add::<0, _, _>(&idx, dev.ones_like(&(2usize, 2usize)))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scatter_add: indices (2, 2) and input (2, 3) must agree on every axis but 0"
    );
}

#[test]
#[should_panic(expected = "scatter_add: index 9 is out of bounds for axis 0 of size 2")]
fn scatter_add_panics_with_the_error_text() {
    let dev = test_device();
    let x: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let _ = x.scatter_add::<0, _, _>(&dev.tensor([[0usize, 9, 1]]), dev.ones::<Rank2<1, 3>>());
}

#[test]
fn scatter_add_undoes_gather_in_the_gradient() {
    // d/dx sum(w · gather(x)) = scatter_add(zeros, idx, w).
    let dev = seeded_test_device(14);
    let x: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.sample_normal();
    let idx = dev.tensor([[3usize, 3, 1], [0, 2, 0], [1, 1, 1]]);
    let w: Tensor<Rank2<3, 3>, f64, TestDevice> = dev.sample_normal();
    let g = (x.leaky_trace().gather::<1, _>(&idx) * w.clone())
        .flatten()
        .sum::<Rank0, _>()
        .backward()
        .get(&x);
    let zeros: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.zeros();
    assert_close(&g.as_vec(), &zeros.scatter_add::<1, _, _>(&idx, w).as_vec());
}

// ---------------------------------------------------------------------------------
// one_hot, arange
// ---------------------------------------------------------------------------------

#[test]
fn one_hot_of_vectors_and_views() {
    let dev = test_device();
    let labels = dev.tensor([3usize, 0, 3, 1]);
    let y: Tensor<Rank2<4, 5>, f32, TestDevice> = labels.one_hot();
    let mut expected = [[0.0f32; 5]; 4];
    for (row, &l) in [3usize, 0, 3, 1].iter().enumerate() {
        expected[row][l] = 1.0;
    }
    assert_eq!(y.array(), expected);
    // Run-time classes; transposed (non-contiguous) indices of rank 2.
    let idx = dev.tensor([[0usize, 1, 2], [2, 2, 0]]).t();
    let h = idx.one_hot_like::<_, f64>(3usize);
    assert_eq!(h.dims(), [3, 2, 3]);
    let iv = idx.as_vec();
    let reference: Vec<f64> = (0..18).map(|p| if iv[p / 3] == p % 3 { 1.0 } else { 0.0 }).collect();
    assert_eq!(h.as_vec(), reference);
    // A scalar index.
    assert_eq!(scalar_index(&dev, 1).one_hot::<3, f64>().array(), [0.0, 1.0, 0.0]);
}

#[test]
fn one_hot_errors() {
    let dev = test_device();
    let labels = dev.tensor([3usize, 5]);
    let e = labels.try_one_hot::<5, f32>().unwrap_err();
    assert_eq!(e.to_string(), "one_hot: index 5 is out of bounds for 5 classes");
    assert!(labels.try_one_hot_like::<_, f64>(6usize).is_ok());
    let result = std::panic::catch_unwind(|| labels.one_hot::<4, f64>());
    let message = result.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*message, "one_hot: index 5 is out of bounds for 4 classes");
}

#[test]
fn arange_of_indices_and_floats() {
    let dev = test_device();
    let i: Tensor<Rank1<5>, usize, TestDevice> = dev.arange();
    assert_eq!(i.array(), [0, 1, 2, 3, 4]);
    let f: Tensor<Rank1<3>, f32, TestDevice> = dev.arange();
    assert_eq!(f.array(), [0.0, 1.0, 2.0]);
    let d = dev
        .try_arange_like::<usize>(&(4,))
        .map(|t: Tensor<(usize,), f64, TestDevice>| t.as_vec())
        .unwrap();
    assert_eq!(d, vec![0.0, 1.0, 2.0, 3.0]);
    let empty: Tensor<(usize,), usize, TestDevice> = dev.arange_like(&(0,));
    assert_eq!(empty.as_vec(), Vec::<usize>::new());
    // arange as indices: the diagonal of a matrix.
    let x = dev.tensor([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    assert_eq!(x.select::<1>(&dev.arange::<3>()).array(), [1.0, 5.0, 9.0]);
}

#[test]
fn indexing_in_f32() {
    let dev = seeded_test_device(15);
    let x: Tensor<Rank2<3, 4>, f32, TestDevice> = dev.sample_normal();
    let xv = x.as_vec();
    let idx = dev.tensor([[1usize, 3], [0, 0], [2, 1]]);
    let g = x
        .leaky_trace()
        .gather::<1, _>(&idx)
        .flatten()
        .sum::<Rank0, _>()
        .backward()
        .get(&x);
    assert_eq!(
        g.array(),
        [[0.0, 1.0, 0.0, 1.0], [2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]
    );
    let y = x.gather::<1, _>(&idx).array();
    assert_eq!(y, [[xv[1], xv[3]], [xv[4], xv[4]], [xv[10], xv[9]]]);
}
