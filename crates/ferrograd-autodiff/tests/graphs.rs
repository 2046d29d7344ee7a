//! The gradient tape on graphs that are not chains: a tensor used twice, residual
//! paths, summed losses, diamonds, shared parameters, merging tapes, which gradients
//! are kept, consumed tapes, and zeroing.
//!
//! Expected gradients come from finite differences (`common::check_gradient`) or from
//! hand derivations written beside them.

mod common;

use common::*;
use ferrograd_autodiff::prelude::*;
use ferrograd_testing::{TestDevice, test_device};

type M = Tensor<Rank2<2, 3>, f64, TestDevice>;

fn x0() -> M {
    test_device().tensor([[-1.3, 0.4, 2.1], [0.7, -0.25, 1.6]])
}
fn y0() -> M {
    test_device().tensor([[0.9, -1.1, 0.35], [1.8, 0.6, -0.75]])
}

#[test]
fn a_tensor_used_twice() {
    let x = x0();
    // d Σ w_i x_i² / dx_i = 2 w_i x_i.
    let g = check_gradient(&x, |t| weighted_sum(t.clone() * t));
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x.as_vec().iter().zip(&w).map(|(x, w)| 2.0 * w * x).collect();
    assert_close(&g, &expected, 1e-15, 0.0, "d(x·x)/dx");
    // Three uses: x · x · x, and x in two different ops.
    check_gradient(&x, |t| weighted_sum(t.clone() * t.clone() * t));
    check_gradient(&x, |t| weighted_sum(t.clone().sin() * t.exp()));
}

#[test]
fn a_residual_path() {
    let x = x0();
    // y = tanh(x) + x: dy/dx = 1 - tanh²(x) + 1.
    let g = check_gradient(&x, |t| weighted_sum(t.clone().tanh() + t));
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x
        .as_vec()
        .iter()
        .zip(&w)
        .map(|(x, w)| w * (2.0 - x.tanh().powi(2)))
        .collect();
    assert_close(&g, &expected, 1e-15, 0.0, "d(tanh x + x)/dx");
    // Two residual blocks in a row: h = x + sin(x), y = h + sigmoid(h).
    check_gradient(&x, |t| {
        let h = t.clone() + t.sin();
        weighted_sum(h.clone() + h.sigmoid())
    });
}

#[test]
fn the_sum_of_two_losses() {
    let x = x0();
    // L = Σ w x² + Σ v e^x (different weights): dL/dx = 2 w x + v e^x.
    let g = check_gradient(&x, |t| {
        weighted_sum(t.clone().square()) + weighted_sum_seeded(t.exp(), 7)
    });
    let (w, v) = (weights(6, DEFAULT_WEIGHT_SEED), weights(6, 7));
    let expected: Vec<f64> = (0..6)
        .map(|i| 2.0 * w[i] * x.as_vec()[i] + v[i] * x.as_vec()[i].exp())
        .collect();
    assert_close(&g, &expected, 1e-14, 0.0, "d(L1 + L2)/dx");
    // Losses combined by other scalar ops.
    check_gradient(&x, |t| weighted_sum(t.clone().sin()) * weighted_sum(t.cos()));
    check_gradient(&x, |t| {
        (weighted_sum(t.clone().sin()) - weighted_sum(t.square()) * 0.5).exp()
    });
}

#[test]
fn a_diamond() {
    let x = x0();
    // y = sin(x), z = e^x, L = Σ w · y · z: dL/dx = w (cos x · e^x + sin x · e^x).
    let g = check_gradient(&x, |t| {
        let y = t.clone().sin();
        let z = t.exp();
        weighted_sum(y * z)
    });
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x
        .as_vec()
        .iter()
        .zip(&w)
        .map(|(x, w)| w * (x.cos() + x.sin()) * x.exp())
        .collect();
    assert_close(&g, &expected, 1e-14, 0.0, "diamond");
    // Nested diamonds, with reductions on one branch.
    check_gradient(&x, |t| {
        let a = t.clone().tanh();
        let b = t.clone().square();
        let c = a.clone() * b.clone();
        let d = a.maximum(b);
        weighted_sum(c / (d + 2.0)) + (t.sum::<Rank0, _>() * 0.1).sin()
    });
}

#[test]
fn a_parameter_used_in_two_places() {
    // A weight w shared by two layers: h = tanh(w ∘ x), out = w ∘ h + w.
    let (x, w) = (x0(), y0());
    let net = |w: Traced<Rank2<2, 3>>, x: Traced<Rank2<2, 3>>| {
        let h = (w.clone() * x).tanh();
        weighted_sum(w.clone() * h + w)
    };
    let (gw, gx) = check_gradient2(&w, &x, net);
    // By hand, with v the loss weights: d/dw = v (tanh(wx) + w x (1 - tanh²(wx)) + 1),
    // d/dx = v w² (1 - tanh²(wx)).
    let v = weights(6, DEFAULT_WEIGHT_SEED);
    let (wv, xv) = (w.as_vec(), x.as_vec());
    let ew: Vec<f64> = (0..6)
        .map(|i| {
            let th = (wv[i] * xv[i]).tanh();
            v[i] * (th + wv[i] * xv[i] * (1.0 - th * th) + 1.0)
        })
        .collect();
    let ex: Vec<f64> = (0..6)
        .map(|i| v[i] * wv[i] * wv[i] * (1.0 - (wv[i] * xv[i]).tanh().powi(2)))
        .collect();
    assert_close(&gw, &ew, 1e-14, 0.0, "shared weight: d/dw");
    assert_close(&gx, &ex, 1e-14, 0.0, "shared weight: d/dx");
    // The parameter alone traced, x a constant.
    check_gradient(&w, |w| {
        let x = x0();
        let h = (w.clone() * x).tanh();
        weighted_sum(w.clone() * h + w)
    });
}

#[test]
fn separately_traced_inputs_merge_tapes() {
    let (x, y) = (x0(), y0());
    // Each on its own tape, with its own gradients; the tapes merge at `*`.
    let tx = x.clone().traced(x.alloc_grads());
    let ty = y.clone().traced(y.alloc_grads());
    let loss = weighted_sum(tx.exp() * ty.sin());
    let grads = loss.backward();
    // d/dx = w e^x sin y, d/dy = w e^x cos y.
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let (xv, yv) = (x.as_vec(), y.as_vec());
    let gx: Vec<f64> = (0..6).map(|i| w[i] * xv[i].exp() * yv[i].sin()).collect();
    let gy: Vec<f64> = (0..6).map(|i| w[i] * xv[i].exp() * yv[i].cos()).collect();
    assert_close(&grads.get(&x).as_vec(), &gx, 1e-15, 0.0, "merged tapes: d/dx");
    assert_close(&grads.get(&y).as_vec(), &gy, 1e-15, 0.0, "merged tapes: d/dy");

    // Three tapes, merged in two steps, one of them leaky.
    let z: M = test_device().tensor([[0.5, 1.5, -0.5], [2.0, -1.0, 0.25]]);
    let tx = x.clone().traced(x.alloc_grads());
    let ty = y.clone().traced(y.alloc_grads());
    let tz = z.leaky_trace();
    let loss = weighted_sum((tx * ty) + tz.square());
    let grads = loss.backward();
    let zv = z.as_vec();
    assert_close(
        &grads.get(&x).as_vec(),
        &(0..6).map(|i| w[i] * yv[i]).collect::<Vec<_>>(),
        1e-15,
        0.0,
        "d/dx",
    );
    assert_close(
        &grads.get(&y).as_vec(),
        &(0..6).map(|i| w[i] * xv[i]).collect::<Vec<_>>(),
        1e-15,
        0.0,
        "d/dy",
    );
    assert_close(
        &grads.get(&z).as_vec(),
        &(0..6).map(|i| 2.0 * w[i] * zv[i]).collect::<Vec<_>>(),
        1e-15,
        0.0,
        "d/dz",
    );

    // Both operands of the merging op may be traced copies of one tensor on two tapes.
    let a = x.clone().traced(x.alloc_grads());
    let b = x.clone().traced(x.alloc_grads());
    let g = weighted_sum(a * b).backward().get(&x).as_vec();
    assert_close(
        &g,
        &(0..6).map(|i| 2.0 * w[i] * xv[i]).collect::<Vec<_>>(),
        1e-15,
        0.0,
        "x on two tapes",
    );
}

#[test]
fn leaky_trace_keeps_the_gradient_of_an_untraced_operand() {
    let (x, c) = (x0(), y0());
    // L = Σ w · x · c with c untraced: dL/dc = w x is computed and kept by a leaky tape.
    let loss = weighted_sum(x.leaky_trace() * c.clone());
    let grads = loss.backward();
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let xv = x.as_vec();
    assert!(grads.contains(&c));
    assert_close(
        &grads.get(&c).as_vec(),
        &(0..6).map(|i| w[i] * xv[i]).collect::<Vec<_>>(),
        1e-15,
        0.0,
        "d/dc",
    );
    // A non-leaky tape does not keep it.
    let loss = weighted_sum(x.clone().traced(x.alloc_grads()) * c.clone());
    let grads = loss.backward();
    assert!(!grads.contains(&c));
    assert_eq!(grads.get(&c).as_vec(), [0.0; 6]);
}

#[test]
fn only_the_requested_gradients_are_kept() {
    let x = x0();
    let t = x.clone().traced(x.alloc_grads());
    let hidden = t.exp();
    let probe = hidden.clone(); // same id as `hidden`
    let loss = weighted_sum(hidden.sin());
    let grads = loss.backward();
    // x's gradient is kept (w cos(e^x) e^x); the intermediate's is freed.
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x
        .as_vec()
        .iter()
        .zip(&w)
        .map(|(x, w)| w * x.exp().cos() * x.exp())
        .collect();
    assert!(grads.contains(&x));
    assert_close(&grads.get(&x).as_vec(), &expected, 1e-15, 0.0, "d/dx");
    assert!(
        !grads.contains(&probe),
        "an intermediate gradient outlived backward on a non-leaky tape"
    );

    // Leaky: the intermediate's gradient d L / d e^x = w cos(e^x) is kept too.
    let t = x.leaky_trace();
    let hidden = t.exp();
    let probe = hidden.clone();
    let grads = weighted_sum(hidden.sin()).backward();
    assert!(grads.contains(&probe));
    let expected: Vec<f64> = x.as_vec().iter().zip(&w).map(|(x, w)| w * x.exp().cos()).collect();
    assert_close(&grads.get(&probe).as_vec(), &expected, 1e-15, 0.0, "d/d(e^x)");
}

#[test]
fn a_second_backward_on_a_consumed_tape_errs() {
    let x = x0();
    let t = x.clone().traced(x.alloc_grads());
    // Two losses on one tape.
    let l1 = weighted_sum(t.clone().exp());
    let l2 = weighted_sum(t.sin());
    let grads = l1.backward();
    // The first backward only sees l1: d/dx = w e^x.
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x.as_vec().iter().zip(&w).map(|(x, w)| w * x.exp()).collect();
    assert_close(&grads.get(&x).as_vec(), &expected, 1e-15, 0.0, "first backward");
    match l2.try_backward() {
        Err(Error::TapeAlreadyConsumed) => {}
        other => panic!("expected TapeAlreadyConsumed, got {other:?}"),
    }

    // The same loss twice (a clone shares the tape).
    let loss = weighted_sum(x.leaky_trace().square());
    let again = loss.clone();
    loss.backward();
    assert!(matches!(again.try_backward(), Err(Error::TapeAlreadyConsumed)));

    // A tape merged into another is consumed with it.
    let (a, b) = (x.leaky_trace(), y0().leaky_trace());
    let a_alone = weighted_sum(a.clone().exp());
    let b_alone = weighted_sum(b.clone().exp());
    let merged = weighted_sum(a * b);
    merged.backward();
    assert!(matches!(a_alone.try_backward(), Err(Error::TapeAlreadyConsumed)));
    assert!(matches!(b_alone.try_backward(), Err(Error::TapeAlreadyConsumed)));
}

#[test]
#[should_panic(expected = "backward: the tape of this loss was already used")]
fn backward_on_a_consumed_tape_panics_with_the_error_text() {
    let x = x0();
    let loss = weighted_sum(x.leaky_trace().square());
    let again = loss.clone();
    loss.backward();
    again.backward();
}

#[test]
fn retracing_records_a_new_graph() {
    // After a backward, tracing again works, and a fresh set of gradients starts at 0.
    let x = x0();
    let f = |t: Traced<Rank2<2, 3>>| weighted_sum(t.clone().square() * t);
    let g1 = f(x.clone().traced(x.alloc_grads())).backward().get(&x).as_vec();
    let g2 = f(x.clone().traced(x.alloc_grads())).backward().get(&x).as_vec();
    assert_eq!(g1, g2);
    // d Σ w x³ / dx = 3 w x².
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x.as_vec().iter().zip(&w).map(|(x, w)| 3.0 * w * x * x).collect();
    assert_close(&g1, &expected, 1e-15, 0.0, "d(x³)/dx");
    check_gradient(&x, f);
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let x = x0();
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let once: Vec<f64> = x.as_vec().iter().zip(&w).map(|(x, w)| w * x.cos()).collect();
    let twice: Vec<f64> = once.iter().map(|g| 2.0 * g).collect();

    // Backward adds into the gradients it was given, as in PyTorch.
    let grads = weighted_sum(x.clone().traced(x.alloc_grads()).sin()).backward();
    assert_close(&grads.get(&x).as_vec(), &once, 1e-15, 0.0, "first pass");
    let mut grads = weighted_sum(x.clone().traced(grads).sin()).backward();
    assert_close(&grads.get(&x).as_vec(), &twice, 1e-15, 0.0, "second pass, accumulated");

    // zero_grads zeroes every held gradient, keeping it.
    grads.zero_grads().unwrap();
    assert!(grads.contains(&x));
    assert_eq!(grads.get(&x).as_vec(), [0.0; 6]);
    let grads = weighted_sum(x.clone().traced(grads).sin()).backward();
    assert_close(&grads.get(&x).as_vec(), &once, 1e-15, 0.0, "after zero_grads");

    // Also for gradients held for several tensors, and on a leaky set.
    let y = y0();
    let mut grads = weighted_sum(x.leaky_trace() * y.leaky_trace()).backward();
    assert!(grads.get(&x).as_vec().iter().any(|&g| g != 0.0));
    grads.zero_grads().unwrap();
    assert_eq!(grads.get(&x).as_vec(), [0.0; 6]);
    assert_eq!(grads.get(&y).as_vec(), [0.0; 6]);
}

#[test]
fn a_scalar_input() {
    // f(s) = s² · e^s on a rank-0 tensor: f'(s) = (2s + s²) e^s.
    let s: Tensor<Rank0, f64, TestDevice> = test_device().tensor(0.7);
    let g = check_gradient(&s, |t| t.clone().square() * t.exp());
    assert_close(&g, &[(2.0 * 0.7 + 0.49) * 0.7f64.exp()], 1e-15, 0.0, "d/ds");
    // The loss is the traced input itself: d s / d s = 1.
    let grads = s.clone().traced(s.alloc_grads()).backward();
    assert_eq!(grads.get(&s).array(), 1.0);
}

#[test]
fn detached_and_unused_inputs_get_zero_gradients() {
    let (x, y) = (x0(), y0());
    let t = x.clone().traced(x.alloc_grads());
    // detach cuts the graph: only the second term sends a gradient to x.
    let cut = t.detach();
    let loss = weighted_sum(t.exp() + cut.square());
    let grads = loss.backward();
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = x.as_vec().iter().zip(&w).map(|(x, w)| w * x.exp()).collect();
    assert_close(&grads.get(&x).as_vec(), &expected, 1e-15, 0.0, "detached term");
    // A tensor the loss does not depend on: zeros.
    assert_eq!(grads.get(&y).as_vec(), [0.0; 6]);
}

#[test]
fn a_small_network_against_finite_differences() {
    // Two inputs of different shapes: a row of biases and a matrix, combined via
    // reductions and element-wise ops (no broadcasting yet: b is summed into a scalar).
    let a: M = test_device().tensor([[0.3, -0.8, 1.2], [0.5, 0.9, -1.4]]);
    let b: Tensor<Rank1<3>, f64, TestDevice> = test_device().tensor([0.25, -0.6, 1.1]);
    check_gradient2(&a, &b, |a, b| {
        let rows: Tensor<Rank1<3>, f64, TestDevice, _> = a.clone().gelu().sum();
        let h = (rows * b.clone()).tanh() + b.sigmoid();
        let s = h.mean::<Rank0, _>();
        s.clone() * s + weighted_sum(a.softplus())
    });
}

/// The loss may be a view: backward seeds only the element the view reads. Before the
/// seed went through the loss's layout, a slice of a leaf got `[1, 1, 1, 1]`.
#[test]
fn a_loss_that_is_a_view_of_a_leaf() {
    let dev = test_device();
    let x: Tensor<Rank1<4>, f64, TestDevice> = dev.tensor([1.0, 2.0, 3.0, 4.0]);
    let loss = x.leaky_trace().slice((2..3,)).realize::<Rank1<1>>().squeeze::<0>();
    assert_eq!(loss.backward().get(&x).array(), [0.0, 0.0, 1.0, 0.0]);
}

/// A view of an op's output as the loss: only that element's gradient flows back.
#[test]
fn a_loss_that_is_a_view_of_an_op_output() {
    let dev = test_device();
    let values = [0.5, -1.0, 2.0, 0.25];
    let x: Tensor<Rank1<4>, f64, TestDevice> = dev.tensor(values);
    let y = x.leaky_trace().exp();
    let loss = y.slice((1..2,)).realize::<Rank1<1>>().squeeze::<0>();
    // d exp(x₁)/dx = exp(x₁) at index 1, 0 elsewhere (exactly 0: nothing reaches them).
    let g = loss.backward().get(&x).as_vec();
    assert_close(&g, &[0.0, values[1].exp(), 0.0, 0.0], 1e-14, 0.0, "d exp(x)[1] / dx");
    // The same through a permuted 2-d output: the loss reads element [1][0] of exp(xᵀ).
    let m: Tensor<Rank2<2, 2>, f64, TestDevice> = dev.tensor([[0.5, -1.0], [2.0, 0.25]]);
    let e = m.leaky_trace().exp().permute::<Axes2<1, 0>>();
    let loss = e
        .slice((1..2, 0..1))
        .realize::<Rank2<1, 1>>()
        .squeeze::<0>()
        .squeeze::<0>();
    let g = loss.backward().get(&m).as_vec();
    assert_close(
        &g,
        &[0.0, (-1.0f64).exp(), 0.0, 0.0],
        1e-14,
        0.0,
        "d exp(mᵀ)[1][0] / dm",
    );
}

/// A handle recorded on a tape that was merged since: its node numbers must be
/// translated into the tape it joined.
#[test]
fn recording_through_a_handle_of_a_merged_tape() {
    let dev = test_device();
    let x: Tensor<Rank1<2>, f64, TestDevice> = dev.tensor([0.3, -0.7]);
    let w: Tensor<Rank1<2>, f64, TestDevice> = dev.tensor([1.1, 0.4]);
    let a = x.leaky_trace().exp(); // tape A, node 0
    let b = w.leaky_trace().exp(); // tape B, node 0
    let merged = a + b.clone(); // B joins A: its node 0 becomes A's node 1
    let later = b.sin(); // recorded through B's handle after the merge
    let loss = merged.sum::<Rank0, _>() + later.sum::<Rank0, _>();
    let grads = loss.backward();
    // d/dx Σ e^x = e^x; d/dw Σ (e^w + sin e^w) = e^w (1 + cos e^w).
    let expected_x: Vec<f64> = x.as_vec().iter().map(|v| v.exp()).collect();
    let expected_w: Vec<f64> = w.as_vec().iter().map(|v| v.exp() * (1.0 + v.exp().cos())).collect();
    assert_close(&grads.get(&x).as_vec(), &expected_x, 1e-13, 0.0, "dx");
    assert_close(&grads.get(&w).as_vec(), &expected_w, 1e-13, 0.0, "dw");
}

/// Recording never loses an op, however merges and recordings on other threads
/// interleave: one thread records a chain of adds on tape B while another merges B
/// into tape A. Every add must reach the gradient.
#[test]
fn recording_while_another_thread_merges() {
    const ADDS: usize = 200;
    for _ in 0..50 {
        let dev = test_device();
        let x: Tensor<Rank1<2>, f64, TestDevice> = dev.tensor([1.0, 2.0]);
        let w: Tensor<Rank1<2>, f64, TestDevice> = dev.tensor([3.0, 4.0]);
        let (xt, wt) = (x.leaky_trace(), w.leaky_trace());
        let (chain, merged) = std::thread::scope(|scope| {
            let w_for_chain = wt.clone();
            let chain = scope.spawn(move || {
                let mut y = w_for_chain.clone();
                for _ in 0..ADDS {
                    y = y + w_for_chain.clone();
                }
                y
            });
            let wt = wt.clone();
            let merger = scope.spawn(move || {
                let mut z = xt.clone() + wt.clone();
                for _ in 0..ADDS / 10 {
                    z = z + xt.clone();
                }
                z
            });
            (chain.join().unwrap(), merger.join().unwrap())
        });
        let grads = (chain.sum::<Rank0, _>() + merged.sum::<Rank0, _>()).backward();
        // chain = (ADDS + 1)·w, merged = x + w + (ADDS/10)·x.
        let dw = (ADDS + 1 + 1) as f64;
        let dx = (1 + ADDS / 10) as f64;
        assert_eq!(grads.get(&w).array(), [dw, dw]);
        assert_eq!(grads.get(&x).array(), [dx, dx]);
    }
}

/// A graph dropped without backward frees what its steps kept: the tape drops the
/// steps it never ran.
#[test]
fn a_graph_dropped_without_backward_frees_its_saved_buffers() {
    let dev = test_device();
    let x: Tensor<Rank1<3>, f64, TestDevice> = dev.tensor([1.0, 2.0, 3.0]);
    let y = x.leaky_trace().exp(); // backward of exp keeps its output
    let output = y.shared_storage().clone();
    assert_eq!(
        std::sync::Arc::strong_count(&output),
        3,
        "y, its backward step, and this handle"
    );
    drop(y);
    assert_eq!(std::sync::Arc::strong_count(&output), 1, "the step went with the tape");
}
