//! matmul in every form: forward against a naive triple loop, gradients against
//! central finite differences, with transposed, permuted, sliced and broadcast operands.

use ferrograd_autodiff::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

/// A naive batched product of row-major data: `lhs` (batch, m, k), `rhs` (batch or 1, k, n).
fn naive(lhs: &[f64], rhs: &[f64], batch: usize, rhs_batched: bool, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for b in 0..batch {
        let rb = if rhs_batched { b } else { 0 };
        for i in 0..m {
            for j in 0..n {
                out[(b * m + i) * n + j] = (0..k)
                    .map(|p| lhs[(b * m + i) * k + p] * rhs[(rb * k + p) * n + j])
                    .sum();
            }
        }
    }
    out
}

fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * (1.0 + e.abs()),
            "{what}: element {i}: {a} vs expected {e} (tolerance {tolerance})"
        );
    }
}

/// Central differences of `loss(values)` with respect to each value.
fn finite_differences(values: &[f64], loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut shifted = values.to_vec();
    (0..values.len())
        .map(|i| {
            let h = 1e-6 * values[i].abs().max(1.0);
            shifted[i] = values[i] + h;
            let up = loss(&shifted);
            shifted[i] = values[i] - h;
            let down = loss(&shifted);
            shifted[i] = values[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

#[test]
fn every_form_matches_a_naive_product() {
    let dev = seeded_test_device(1);
    let v: Tensor<Rank1<3>, f64, _> = dev.sample_normal();
    let m: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
    let m2: Tensor<Rank2<2, 3>, f64, _> = dev.sample_normal();
    let b3: Tensor<Rank3<5, 2, 3>, f64, _> = dev.sample_normal();
    let b3r: Tensor<Rank3<5, 3, 4>, f64, _> = dev.sample_normal();
    let b4: Tensor<Rank4<2, 3, 2, 3>, f64, _> = dev.sample_normal();
    let b4r: Tensor<Rank4<2, 3, 3, 4>, f64, _> = dev.sample_normal();

    let vm: Tensor<Rank1<4>, f64, _> = v.clone().matmul(m.clone());
    assert_close(
        &vm.as_vec(),
        &naive(&v.as_vec(), &m.as_vec(), 1, false, 1, 3, 4),
        1e-12,
        "vector·matrix",
    );
    let mv: Tensor<Rank1<2>, f64, _> = m2.clone().matmul(v.clone());
    assert_close(
        &mv.as_vec(),
        &naive(&m2.as_vec(), &v.as_vec(), 1, false, 2, 3, 1),
        1e-12,
        "matrix·vector",
    );
    let mm: Tensor<Rank2<2, 4>, f64, _> = m2.clone().matmul(m.clone());
    assert_close(
        &mm.as_vec(),
        &naive(&m2.as_vec(), &m.as_vec(), 1, false, 2, 3, 4),
        1e-12,
        "matrix·matrix",
    );
    let bm: Tensor<Rank3<5, 2, 4>, f64, _> = b3.clone().matmul(m.clone());
    assert_close(
        &bm.as_vec(),
        &naive(&b3.as_vec(), &m.as_vec(), 5, false, 2, 3, 4),
        1e-12,
        "batch·matrix",
    );
    let bb: Tensor<Rank3<5, 2, 4>, f64, _> = b3.clone().matmul(b3r.clone());
    assert_close(
        &bb.as_vec(),
        &naive(&b3.as_vec(), &b3r.as_vec(), 5, true, 2, 3, 4),
        1e-12,
        "batch·batch",
    );
    let b4b4: Tensor<Rank4<2, 3, 2, 4>, f64, _> = b4.clone().matmul(b4r.clone());
    assert_close(
        &b4b4.as_vec(),
        &naive(&b4.as_vec(), &b4r.as_vec(), 6, true, 2, 3, 4),
        1e-12,
        "4-d batch",
    );
}

#[test]
fn views_reach_the_gemm_correctly() {
    let dev = seeded_test_device(2);
    let a: Tensor<Rank2<3, 2>, f64, _> = dev.sample_normal();
    let b: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
    // aᵀ · bᵀ through views equals the product of materialised transposes.
    let views = a.clone().t().matmul(b.clone().t());
    let copies = a.clone().t().contiguous().matmul(b.clone().t().contiguous());
    assert_close(&views.as_vec(), &copies.as_vec(), 1e-12, "transposed operands");
    // A broadcast row (stride 0 on rows) and a sliced operand (offset + row stride).
    let row = dev.tensor([1.0f64, -2.0, 0.5]);
    let wide: Tensor<Rank2<3, 5>, f64, _> = dev.sample_normal();
    let sliced = wide.slice((.., 1..5)).realize::<Rank2<3, 4>>();
    let got = row.clone().broadcast::<Rank2<2, 3>, _>().matmul(sliced.clone());
    let expected = naive(
        &[row.as_vec(), row.as_vec()].concat(),
        &sliced.as_vec(),
        1,
        false,
        2,
        3,
        4,
    );
    assert_close(&got.as_vec(), &expected, 1e-12, "broadcast · sliced");
    // A permuted batch: (3, 5, 2) permuted to (5, 2, 3).
    let p: Tensor<Rank3<3, 5, 2>, f64, _> = dev.sample_normal();
    let pv = p.clone().permute::<Axes3<1, 2, 0>>();
    let got = pv.clone().matmul(b.clone().t());
    let expected = naive(&pv.as_vec(), &b.t().as_vec(), 5, false, 2, 3, 4);
    assert_close(&got.as_vec(), &expected, 1e-12, "permuted batch");
}

/// Checks d(sum(w ⊙ (a·b)))/da and /db against finite differences for one form.
macro_rules! check_form {
    ($a:ty, $b:ty, $out:ty, $seed:expr) => {{
        let dev = seeded_test_device($seed);
        let a_values = values(<$a as ConstShape>::NUMEL, $seed + 100);
        let b_values = values(<$b as ConstShape>::NUMEL, $seed + 200);
        let weights: Tensor<$out, f64, TestDevice> = dev.sample_normal();
        let loss_of = |a: &[f64], b: &[f64]| {
            let ta = dev.tensor_from_vec(a.to_vec(), <$a>::default());
            let tb = dev.tensor_from_vec(b.to_vec(), <$b>::default());
            let out: Tensor<$out, f64, TestDevice, _> = ta.leaky_trace().matmul(tb.leaky_trace());
            let loss = (out * weights.clone()).sum::<Rank0, _>();
            let value = loss.as_vec()[0];
            let grads = loss.backward();
            (value, grads.get(&ta).as_vec(), grads.get(&tb).as_vec())
        };
        let (_, grad_a, grad_b) = loss_of(&a_values, &b_values);
        let what = concat!(stringify!($a), " times ", stringify!($b));
        assert_close(
            &grad_a,
            &finite_differences(&a_values, |a| loss_of(a, &b_values).0),
            1e-6,
            what,
        );
        assert_close(
            &grad_b,
            &finite_differences(&b_values, |b| loss_of(&a_values, b).0),
            1e-6,
            what,
        );
    }};
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    let t: Tensor<(usize,), f64, TestDevice> = seeded_test_device(seed).sample_normal_like(&(n,));
    t.as_vec()
}

#[test]
fn gradients_of_every_form_match_finite_differences() {
    check_form!(Rank1<3>, Rank2<3, 4>, Rank1<4>, 1);
    check_form!(Rank2<2, 3>, Rank1<3>, Rank1<2>, 2);
    check_form!(Rank2<2, 3>, Rank2<3, 4>, Rank2<2, 4>, 3);
    check_form!(Rank3<3, 2, 3>, Rank2<3, 4>, Rank3<3, 2, 4>, 4);
    check_form!(Rank3<3, 2, 3>, Rank3<3, 3, 4>, Rank3<3, 2, 4>, 5);
    check_form!(Rank4<2, 2, 2, 3>, Rank4<2, 2, 3, 2>, Rank4<2, 2, 2, 2>, 6);
}

#[test]
fn gradients_through_transposed_and_broadcast_operands() {
    let dev = seeded_test_device(3);
    // loss = sum(w ⊙ (aᵀ · B)) with B a broadcast row: both gradients through views.
    let a_values = values(6, 20);
    let row_values = values(4, 21);
    let weights: Tensor<Rank2<2, 4>, f64, TestDevice> = dev.sample_normal();
    let loss_of = |a: &[f64], row: &[f64]| {
        let a = dev.tensor_from_vec(a.to_vec(), <Rank2<3, 2>>::default());
        let row = dev.tensor_from_vec(row.to_vec(), <Rank1<4>>::default());
        let out = a
            .leaky_trace()
            .t()
            .matmul(row.leaky_trace().broadcast::<Rank2<3, 4>, _>());
        let loss = (out * weights.clone()).sum::<Rank0, _>();
        let value = loss.as_vec()[0];
        let grads = loss.backward();
        (value, grads.get(&a).as_vec(), grads.get(&row).as_vec())
    };
    let (_, grad_a, grad_row) = loss_of(&a_values, &row_values);
    assert_close(
        &grad_a,
        &finite_differences(&a_values, |a| loss_of(a, &row_values).0),
        1e-6,
        "transposed lhs",
    );
    assert_close(
        &grad_row,
        &finite_differences(&row_values, |r| loss_of(&a_values, r).0),
        1e-6,
        "broadcast rhs",
    );
}

#[test]
fn run_time_inner_dims_that_disagree_are_an_error() {
    let dev = test_device();
    let a = dev.zeros_like(&(2usize, 3usize));
    let b = dev.zeros_like(&(4usize, 5usize));
    let err = a
        .try_matmul::<_, NoneTape>(b)
        .map(|t: Tensor<(usize, usize), f32, TestDevice>| t.dims())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "matmul: lhs [2, 3] and rhs [4, 5] disagree on the inner or batch dims"
    );
}

#[test]
fn f32_products_match_f64() {
    let dev = seeded_test_device(4);
    let a: Tensor<Rank3<4, 17, 33>, f64, _> = dev.sample_normal();
    let b: Tensor<Rank2<33, 9>, f64, _> = dev.sample_normal();
    let exact = a.clone().matmul(b.clone()).as_vec();
    let single = a
        .to_dtype::<f32>()
        .matmul(b.to_dtype::<f32>())
        .to_dtype::<f64>()
        .as_vec();
    assert_close(&single, &exact, 1e-5, "f32 vs f64");
}

/// Outputs that are overwritten entirely (a product, a concat, a contiguous copy, and
/// a product's first weight gradient) take freed buffers without clearing them: none
/// of the old values, here NaN, may survive into a result. Run for a small size (the
/// thread's pool) and a large one (the shared cache).
#[test]
fn reused_buffers_leave_nothing_of_their_old_values() {
    fn poison(dev: &TestDevice, len: usize) {
        for _ in 0..4 {
            drop(dev.tensor_from_vec(vec![f64::NAN; len], (len,)));
        }
    }
    let dev = test_device();
    for (m, k, n) in [(3, 5, 4), (96, 40, 100)] {
        let a: Tensor<(usize, usize), f64, TestDevice> = dev.sample_normal_like(&(m, k));
        let b: Tensor<(usize, usize), f64, TestDevice> = dev.sample_normal_like(&(k, n));
        poison(&dev, m * n);
        let product = a.clone().matmul(b.clone());
        let expected = naive(&a.as_vec(), &b.as_vec(), 1, false, m, k, n);
        assert_close(&product.as_vec(), &expected, 1e-12, "product");

        poison(&dev, m * k);
        let grads = a.leaky_trace().matmul(b.clone()).sum::<Rank0, _>().backward();
        let row_sums: Vec<f64> = (0..k).map(|p| (0..n).map(|j| b.as_vec()[p * n + j]).sum()).collect();
        let expected: Vec<f64> = (0..m * k).map(|i| row_sums[i % k]).collect();
        assert_close(&grads.get(&a).as_vec(), &expected, 1e-12, "weight gradient");

        poison(&dev, 2 * m * k);
        let joined = a.clone().concat_along(Axis::<0>, a.clone());
        let mut expected = a.as_vec();
        expected.extend(a.as_vec());
        assert_eq!(joined.as_vec(), expected, "concat");

        poison(&dev, m * k);
        let transposed = a.clone().t().contiguous();
        let expected: Vec<f64> = (0..k * m).map(|i| a.as_vec()[(i % m) * k + i / m]).collect();
        assert_eq!(transposed.as_vec(), expected, "contiguous");
    }
}

/// `(B, M, K)·(K, N)`: the weight's gradient is `Σ_b lhs_bᵀ · G_b`, which the kernel
/// cannot write through the weight's layout (one matrix repeated over the batch); the
/// batch is folded into the inner dimension instead. Checked against a loop of
/// per-batch products for a contiguous lhs (folded in place), a permuted one (copied
/// first) and a transposed weight (its gradient written through a column-major layout).
#[test]
fn broadcast_weight_gradient_is_the_sum_of_per_batch_products() {
    const B: usize = 4;
    const M: usize = 3;
    const K: usize = 5;
    const N: usize = 2;
    let dev = seeded_test_device(7);
    let weights: Tensor<Rank3<B, M, N>, f64, TestDevice> = dev.sample_normal();
    let g = weights.as_vec();
    let g_at = |b: usize, i: usize, j: usize| g[(b * M + i) * N + j];
    let lhs_values = values(B * M * K, 31);
    let w_values = values(K * N, 30);
    let w_transposed: Vec<f64> = (0..N * K).map(|t| w_values[(t % K) * N + t / K]).collect();

    // The gradients of (lhs, w) for leaves of the given shapes and buffers, seen as
    // (B, M, K) and (K, N) through `lhs_view` and `w_view`.
    macro_rules! gradients {
        ($lhs_shape:ty, $lhs_view:expr, $w_shape:ty, $w_buffer:expr, $w_view:expr) => {{
            let lhs = dev.tensor_from_vec(lhs_values.clone(), <$lhs_shape>::default());
            let w = dev.tensor_from_vec($w_buffer.clone(), <$w_shape>::default());
            let out: Tensor<Rank3<B, M, N>, f64, TestDevice, _> =
                $lhs_view(lhs.clone().leaky_trace()).matmul($w_view(w.clone().leaky_trace()));
            let grads = (out * weights.clone()).sum::<Rank0, _>().backward();
            (grads.get(&lhs).as_vec(), grads.get(&w).as_vec())
        }};
    }
    let cases = [
        (
            false,
            false,
            gradients!(Rank3<B, M, K>, |l| l, Rank2<K, N>, w_values, |w| w),
        ),
        (
            false,
            true,
            gradients!(Rank3<B, M, K>, |l| l, Rank2<N, K>, w_transposed, |w: Tensor<_, _, _, _>| w.t()),
        ),
        (
            true,
            false,
            gradients!(
                Rank3<M, B, K>,
                |l: Tensor<_, _, _, _>| l.permute::<Axes3<1, 0, 2>>(),
                Rank2<K, N>,
                w_values,
                |w| w
            ),
        ),
        (
            true,
            true,
            gradients!(
                Rank3<M, B, K>,
                |l: Tensor<_, _, _, _>| l.permute::<Axes3<1, 0, 2>>(),
                Rank2<N, K>,
                w_transposed,
                |w: Tensor<_, _, _, _>| w.t()
            ),
        ),
    ];
    for (permuted_lhs, transposed_weight, (lhs_grad, w_grad)) in cases {
        let what = format!("permuted lhs {permuted_lhs}, transposed weight {transposed_weight}");
        // Where lhs[b][i][p] and w[p][j] live in their leaves' buffers.
        let lhs_at = |b: usize, i: usize, p: usize| {
            if permuted_lhs {
                (i * B + b) * K + p
            } else {
                (b * M + i) * K + p
            }
        };
        let w_at = |p: usize, j: usize| if transposed_weight { j * K + p } else { p * N + j };

        // d w[p][j] = Σ_b Σ_i lhs[b][i][p] · G[b][i][j].
        let mut expected_w = vec![0.0; K * N];
        for b in 0..B {
            for i in 0..M {
                for p in 0..K {
                    for j in 0..N {
                        expected_w[w_at(p, j)] += lhs_values[lhs_at(b, i, p)] * g_at(b, i, j);
                    }
                }
            }
        }
        assert_close(&w_grad, &expected_w, 1e-12, &format!("weight gradient, {what}"));

        // d lhs[b][i][p] = Σ_j G[b][i][j] · w[p][j].
        let mut expected_lhs = vec![0.0; B * M * K];
        for b in 0..B {
            for i in 0..M {
                for p in 0..K {
                    expected_lhs[lhs_at(b, i, p)] = (0..N).map(|j| g_at(b, i, j) * w_values[p * N + j]).sum();
                }
            }
        }
        assert_close(&lhs_grad, &expected_lhs, 1e-12, &format!("lhs gradient, {what}"));
    }
}

/// `(B, S, M, K)·(B, S, K, N)` with each operand broadcast along one batch axis: the
/// lhs along B (its gradient sums over B, for each S), the rhs along S (summed over S,
/// for each B), and a broadcast row within the rhs's matrices too. Against finite
/// differences.
#[test]
fn partly_broadcast_batches_match_finite_differences() {
    let dev = seeded_test_device(8);
    let weights: Tensor<Rank4<2, 3, 2, 4>, f64, TestDevice> = dev.sample_normal();
    let loss_of = |a: &[f64], b: &[f64], row: &[f64]| {
        let a = dev.tensor_from_vec(a.to_vec(), <Rank3<3, 2, 3>>::default());
        let b = dev.tensor_from_vec(b.to_vec(), <Rank3<2, 3, 4>>::default());
        let row = dev.tensor_from_vec(row.to_vec(), <Rank1<4>>::default());
        let lhs = a.leaky_trace().broadcast::<Rank4<2, 3, 2, 3>, _>();
        let rhs = b.leaky_trace().broadcast::<Rank4<2, 3, 3, 4>, Axis<1>>();
        let rows = row.leaky_trace().broadcast::<Rank4<2, 3, 3, 4>, Axes3<0, 1, 2>>();
        let out = lhs.clone().matmul(rhs) + lhs.matmul(rows);
        let loss = (out * weights.clone()).sum::<Rank0, _>();
        let value = loss.as_vec()[0];
        let grads = loss.backward();
        (
            value,
            grads.get(&a).as_vec(),
            grads.get(&b).as_vec(),
            grads.get(&row).as_vec(),
        )
    };
    let (a, b, row) = (values(18, 40), values(24, 41), values(4, 42));
    let (_, grad_a, grad_b, grad_row) = loss_of(&a, &b, &row);
    assert_close(
        &grad_a,
        &finite_differences(&a, |a| loss_of(a, &b, &row).0),
        1e-6,
        "lhs broadcast along B",
    );
    assert_close(
        &grad_b,
        &finite_differences(&b, |b| loss_of(&a, b, &row).0),
        1e-6,
        "rhs broadcast along S",
    );
    assert_close(
        &grad_row,
        &finite_differences(&row, |r| loss_of(&a, &b, r).0),
        1e-6,
        "broadcast row",
    );
}
