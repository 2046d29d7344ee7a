//! Hogwild! shared parameters and synchronous data parallelism.

use ferrograd_nn::losses::{Reduction, mse_loss};
use ferrograd_nn::prelude::*;
use ferrograd_nn::{Built, EmbeddingConfig};
use ferrograd_optim::{Optimizer, Sgd, SgdConfig, SharedParameters, average_gradients, data_parallel_step};
// CPU-only on purpose: Hogwild! shares host memory between threads (SharedParameters
// and data_parallel_step need parameter buffers that deref to slices, and `bits` reads
// them), so these tests name the CPU instead of ferrograd-testing's Cpu and run
// on it whichever device the rest of the suite uses.
use ferrograd_cpu::Cpu;

type Table = EmbeddingConfig<Const<50>, Const<3>>;
type Model = (Table, Linear<3, 1>);

fn build(seed: u64) -> Built<Model, f32, Cpu> {
    Cpu::seed_from_u64(seed).build_module_with::<_, f32>((Table::default().sparse(true), Linear::default()))
}

fn bits(model: &Built<Model, f32, Cpu>) -> Vec<u32> {
    let mut out: Vec<u32> = model.0.weight.storage().iter().map(|v| v.to_bits()).collect();
    out.extend(model.1.weight.storage().iter().map(|v| v.to_bits()));
    out.extend(
        model
            .1
            .bias
            .iter()
            .flat_map(|b| b.storage().iter().map(|v| v.to_bits())),
    );
    out
}

/// Gradients of the squared error of a few lookups, sparse for the table.
fn grads_for(model: &Built<Model, f32, Cpu>, ids: [usize; 4], target: [f32; 4]) -> Gradients<f32, Cpu> {
    let dev = model.1.weight.device().clone();
    let ids: Tensor<Rank1<4>, usize, Cpu> = dev.tensor(ids);
    let y: Tensor<Rank2<4, 1>, f32, Cpu> = dev.tensor(target.map(|t| [t]));
    let out = model.forward(ids.traced_indices(model.try_alloc_grads().unwrap()));
    mse_loss(out, y, Reduction::Mean).backward()
}

#[test]
fn apply_sgd_matches_sgd_and_touches_only_the_rows_looked_up() -> Result<(), Error> {
    let original = build(0);
    let mut replica = build(7);
    let shared = SharedParameters::new(&original)?;
    assert_eq!((shared.len(), shared.num_elements()), (3, 150 + 3 + 1));
    shared.snapshot_into(&mut replica)?;
    assert_eq!(bits(&replica), bits(&original));
    // The optimizer finds gradients by id: it updates a copy of the replica.
    let mut reference = replica.clone();
    let before = bits(&reference);

    let grads = grads_for(&replica, [4, 9, 4, 31], [1.0, -1.0, 0.5, 2.0]);
    assert!(grads.is_sparse(&replica.0.weight));
    shared.apply_sgd(&replica, &grads, 0.1)?;
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })?;
    sgd.step(&mut reference, &grads)?;
    shared.snapshot_into(&mut replica)?;
    // One thread: exactly the optimizer's update.
    assert_eq!(bits(&replica), bits(&reference));
    let after = bits(&replica);
    for row in 0..50 {
        let moved = (0..3).any(|j| before[row * 3 + j] != after[row * 3 + j]);
        assert_eq!(moved, [4, 9, 31].contains(&row), "row {row}");
    }
    Ok(())
}

#[test]
fn a_model_of_another_shape_is_an_error() -> Result<(), Error> {
    let model = build(0);
    let shared = SharedParameters::new(&model)?;
    let dev = Cpu::seed_from_u64(0);
    let mut other = dev.build_module::<Linear<3, 1>, f32>();
    let error = shared.snapshot_into(&mut other).unwrap_err();
    assert!(error.to_string().contains("same model type"), "{error}");
    let grads = grads_for(&model, [0, 1, 2, 3], [0.0; 4]);
    assert!(shared.apply_sgd(&model, &grads, f64::NAN).is_err());
    Ok(())
}

#[test]
fn hogwild_threads_learn_together() -> Result<(), Error> {
    // Each row r should predict r / 50; four threads, disjoint lookups, no lock.
    let mut model = build(1);
    let shared = SharedParameters::new(&model)?;
    std::thread::scope(|scope| {
        for thread in 0..4usize {
            let shared = &shared;
            scope.spawn(move || {
                let mut local = build(100 + thread as u64);
                for step in 0..1500usize {
                    shared.snapshot_into(&mut local).unwrap();
                    let ids = [0, 1, 2, 3].map(|k| (thread * 13 + step * 4 + k) % 50);
                    let grads = grads_for(&local, ids, ids.map(|r| r as f32 / 50.0));
                    shared.apply_sgd(&local, &grads, 0.5).unwrap();
                }
            });
        }
    });
    shared.snapshot_into(&mut model)?;
    let dev = Cpu::default();
    let ids: Tensor<Rank1<50>, usize, Cpu> = dev.tensor_from_vec((0..50).collect(), Default::default());
    let out = model.forward(ids).array();
    let worst = (0..50)
        .map(|r| (out[r][0] - r as f32 / 50.0).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 0.01, "worst error {worst}");
    Ok(())
}

fn train_data_parallel(shards: usize) -> Result<Vec<u32>, Error> {
    let mut model = build(3);
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.2,
        ..Default::default()
    })?;
    for step in 0..40usize {
        data_parallel_step(&mut model, &mut sgd, shards, |shard, model: &Built<Model, f32, Cpu>| {
            // The shards overlap on row 7, so merging their sparse rows is exercised.
            let ids = [7, (step + shard * 5) % 50, (step * 3 + shard) % 50, (shard + 11) % 50];
            Ok(grads_for(model, ids, ids.map(|r| (r as f32 / 25.0).sin())))
        })?;
    }
    Ok(bits(&model))
}

#[test]
fn data_parallel_is_bit_identical_run_after_run() -> Result<(), Error> {
    let first = train_data_parallel(2)?;
    assert_eq!(first, train_data_parallel(2)?);
    assert_eq!(train_data_parallel(3)?, train_data_parallel(3)?);
    // And it trained: the parameters moved from their start.
    assert_ne!(first, bits(&build(3)));
    Ok(())
}

#[test]
fn average_of_sparse_and_dense_gradients_is_the_mean() -> Result<(), Error> {
    let model = build(5);
    let a = grads_for(&model, [1, 2, 2, 40], [1.0, 0.0, -1.0, 3.0]);
    let b = grads_for(&model, [2, 3, 9, 9], [0.5, 0.5, -2.0, 1.0]);
    let dev = Cpu::default();
    let dense = |g: &Gradients<f32, Cpu>| g.sparse_grad(&model.0.weight).unwrap().try_to_dense(&dev).unwrap();
    let (da, db) = (dense(&a), dense(&b));
    let (la, lb) = (
        a.try_grad(&model.1.weight)?.to_vec(),
        b.try_grad(&model.1.weight)?.to_vec(),
    );
    let mean = average_gradients(&model, vec![a, b])?;
    let table = mean.sparse_grad(&model.0.weight).expect("stays sparse");
    assert_eq!(table.indices(), &[1, 2, 3, 9, 40]);
    for (m, (x, y)) in table.try_to_dense(&dev)?.iter().zip(da.iter().zip(db.iter())) {
        assert_eq!(*m, (x + y) * 0.5);
    }
    for (m, (x, y)) in mean.try_grad(&model.1.weight)?.iter().zip(la.iter().zip(&lb)) {
        assert_eq!(*m, (x + y) * 0.5);
    }
    assert!(average_gradients(&model, Vec::new()).is_err());
    Ok(())
}
