//! `Embedding` with a row-sparse gradient: the same gradient as the dense layer (whose
//! gradients are checked against PyTorch in `models.rs`), without the dense table.

use ferrograd_autodiff::Gradients;
use ferrograd_device::Storage;
use ferrograd_nn::EmbeddingConfig;
use ferrograd_nn::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

type Config = EmbeddingConfig<Const<6>, Const<3>>;

/// A loss whose gradient differs per lookup and per feature: Σ c ⊙ emb(ids), with
/// c[k][j] = k + 1 + j / 10, so d loss / d weight[r] = Σ over lookups k of r: c[k].
fn weighted_loss<T: Tape<f64, TestDevice>>(
    rows: Tensor<Rank2<5, 3>, f64, TestDevice, T>,
) -> Tensor<Rank0, f64, TestDevice, T> {
    let dev = test_device();
    let c: Tensor<Rank2<5, 3>, f64, TestDevice> = dev.tensor(std::array::from_fn(|k| {
        std::array::from_fn(|j| k as f64 + 1.0 + j as f64 / 10.0)
    }));
    (rows * c).sum::<Rank0, _>()
}

fn ids() -> Tensor<Rank1<5>, usize, TestDevice> {
    test_device().tensor([4, 1, 4, 0, 4])
}

#[test]
fn sparse_gradient_holds_the_touched_rows_summed() {
    let dev = seeded_test_device(3);
    let table = dev.build_module_with::<_, f64>(Config::default().sparse(true));
    let grads = table.try_alloc_grads().unwrap();
    assert!(grads.is_sparse(&table.weight), "allocation must not make a dense table");
    let grads = weighted_loss(table.forward(ids().traced_indices(grads))).backward();
    let grad = grads.sparse_grad(&table.weight).expect("sparse");
    // Row 0: lookup 3; row 1: lookup 1; row 4: lookups 0, 2 and 4 (c rows 1, 3, 5).
    assert_eq!(grad.indices(), &[0, 1, 4]);
    let expected = [4.0, 4.1, 4.2, 2.0, 2.1, 2.2, 9.0, 9.3, 9.6];
    for (got, want) in dev.try_to_host(grad.values()).unwrap().into_iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert!(
        grads.try_grad(&table.weight).is_err(),
        "a dense reader must not get a sparse gradient"
    );
    // And the same as the dense layer's, made dense.
    // The dense twin: the same weight (and id), a dense gradient.
    let twin = ferrograd_nn::built::Embedding {
        sparse: false,
        ..table.clone()
    };
    let dense_grads = weighted_loss(twin.forward(ids().traced_indices(twin.try_alloc_grads().unwrap()))).backward();
    assert!(!dense_grads.is_sparse(&twin.weight));
    assert_eq!(grads.get(&table.weight).array(), dense_grads.get(&table.weight).array());
}

#[test]
fn padding_row_gets_no_gradient_and_forward_is_unchanged() {
    let dev = seeded_test_device(4);
    let table = dev.build_module_with::<_, f64>(Config::default().padding_idx(4).sparse(true));
    let out = table.forward(ids());
    assert_eq!(out.array()[0], [0.0; 3], "the padding row starts at zero");
    let grads = weighted_loss(table.forward(ids().traced_indices(table.try_alloc_grads().unwrap()))).backward();
    assert_eq!(grads.sparse_grad(&table.weight).unwrap().indices(), &[0, 1]);
}

#[test]
fn gradients_accumulate_over_backward_passes_and_zero_to_no_rows() {
    let dev = seeded_test_device(5);
    let table = dev.build_module_with::<_, f64>(Config::default().sparse(true));
    let grads = table.try_alloc_grads().unwrap();
    let grads = table.forward(ids().traced_indices(grads)).sum::<Rank0, _>().backward();
    let second: Tensor<Rank1<2>, usize, TestDevice> = dev.tensor([2, 1]);
    let mut grads = table.forward(second.traced_indices(grads)).sum::<Rank0, _>().backward();
    let grad = grads.sparse_grad(&table.weight).unwrap();
    assert_eq!(grad.indices(), &[0, 1, 2, 4]);
    assert_eq!(
        dev.try_to_host(grad.values()).unwrap(),
        [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0]
    );
    grads.zero_grads().unwrap();
    assert!(grads.is_sparse(&table.weight) && grads.sparse_grad(&table.weight).unwrap().is_empty());
    assert_eq!(grads.get(&table.weight).array(), [[0.0; 3]; 6]);
}

#[test]
fn a_dense_use_of_the_same_table_makes_its_gradient_dense() {
    let dev = seeded_test_device(6);
    let table = dev.build_module_with::<_, f64>(Config::default().sparse(true));
    let grads = table.try_alloc_grads().unwrap();
    // loss = Σ emb(ids) + Σ weight²: the second term's gradient 2·weight is dense.
    let (summed, tape) = table
        .forward(ids().traced_indices(grads))
        .sum::<Rank0, _>()
        .split_tape();
    let squares = table.weight.clone().put_tape(tape.clone()).square().sum::<Rank0, _>();
    let summed = summed.put_tape(tape);
    let grads = (squares + summed).backward();
    assert!(!grads.is_sparse(&table.weight));
    let weight = table.weight.array();
    let got = dev.try_to_host(grads.try_grad(&table.weight).unwrap()).unwrap();
    let counts = [1.0, 1.0, 0.0, 0.0, 3.0, 0.0];
    for r in 0..6 {
        for j in 0..3 {
            let want = 2.0 * weight[r][j] + counts[r];
            assert!(
                (got[r * 3 + j] - want).abs() < 1e-12,
                "row {r}: {} vs {want}",
                got[r * 3 + j]
            );
        }
    }
}

#[test]
fn leaky_gradients_take_the_sparse_gradient_too() {
    let dev = seeded_test_device(7);
    let table = dev.build_module_with::<_, f32>(Config::default().sparse(true));
    let grads = table
        .forward(ids().traced_indices(Gradients::leaky()))
        .sum::<Rank0, _>()
        .backward();
    assert_eq!(grads.sparse_grad(&table.weight).unwrap().indices(), &[0, 1, 4]);
}
