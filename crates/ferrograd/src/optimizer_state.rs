//! Saving and loading an optimizer's state (Adam's moments, momentum buffers, step
//! counts) as npz, beside the model's checkpoint, so that training resumes exactly.
//!
//! It lives in the facade because it joins two crates that do not know each other:
//! `ferrograd-optim` (the state) and `ferrograd-nn` (the npz files).

use ferrograd_device::{Error, Storage};
use ferrograd_nn::checkpoint::{ArchiveEntry, ArchiveReader, ArchiveWriter, CheckpointElement, save_archive};
use ferrograd_optim::{Optimizer, StateVisitor};
use std::path::Path;

/// `optimizer.save_state(&dev, path)` / `optimizer.load_state(&dev, path)` for every
/// optimizer. Entries are named `state.<parameter>.<buffer>` (`state.0.weight.exp_avg`)
/// and `state.<parameter>.step` (an int64), like the per-parameter entries of
/// PyTorch's optimizer `state_dict`. The file is written atomically.
///
/// ```
/// use ferrograd::optimizer_state::OptimizerState;
/// use ferrograd::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let mut model = dev.build_module::<(Linear<3, 2>,), f32>();
/// let x: Tensor<Rank2<4, 3>, f32, Cpu> = dev.sample_normal();
/// let gradients_of = |model: &Built<(Linear<3, 2>,), f32, Cpu>| -> Result<Gradients<f32, Cpu>, Error> {
///     let loss = model.forward(x.clone().traced(model.try_alloc_grads()?)).square().mean::<Rank0, _>();
///     Ok(loss.backward())
/// };
/// let mut adam: Adam<f32, Cpu> = Adam::new(AdamConfig::default())?;
/// let grads = gradients_of(&model)?;
/// adam.step(&mut model, &grads)?;
///
/// // Save, resume in a fresh optimizer, and take the same next step in both.
/// let path = std::env::temp_dir().join(format!("ferrograd-adam-{}.npz", std::process::id()));
/// adam.save_state(&dev, &path)?;
/// let mut resumed: Adam<f32, Cpu> = Adam::new(AdamConfig::default())?;
/// resumed.load_state(&dev, &path)?;
/// let mut copy = model.clone();
/// let (grads, copy_grads) = (gradients_of(&model)?, gradients_of(&copy)?);
/// adam.step(&mut model, &grads)?;
/// resumed.step(&mut copy, &copy_grads)?;
/// assert_eq!(model.0.weight.as_vec(), copy.0.weight.as_vec());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), Error>(())
/// ```
pub trait OptimizerState<E: CheckpointElement, D: Storage<E>>: Optimizer<E, D> {
    /// Writes the state to `path` as npz, atomically. `device` is where the state
    /// lives (the model's device).
    fn save_state(&self, device: &D, path: impl AsRef<Path>) -> Result<(), Error> {
        struct Writer<'a, D> {
            archive: &'a mut ArchiveWriter,
            device: &'a D,
        }
        impl<E: CheckpointElement, D: Storage<E>> StateVisitor<E, D> for Writer<'_, D> {
            fn visit_buffer(&mut self, name: &str, dims: &[usize], buffer: &D::Vec) -> Result<(), Error> {
                self.archive.write_floats(name, dims, self.device.try_to_host(buffer)?)
            }
            fn visit_step(&mut self, name: &str, step: u64) -> Result<(), Error> {
                self.archive.write_count(name, step)
            }
        }
        save_archive(path, |archive| self.visit_state(&mut Writer { archive, device }))
    }

    /// Reads state written by [`OptimizerState::save_state`]. Every entry is read and
    /// checked as an array before any is handed to the optimizer; an entry the
    /// optimizer does not keep (another optimizer's file) is an error naming it, and
    /// may leave part of the state loaded: start again from a fresh optimizer then.
    /// Buffers are checked against their parameters at the next step.
    fn load_state(&mut self, device: &D, path: impl AsRef<Path>) -> Result<(), Error> {
        let mut archive = ArchiveReader::open(path)?;
        let keys: Vec<String> = archive.keys().map(str::to_string).collect();
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let entry = archive.read::<E>(&key)?;
            entries.push((key, entry));
        }
        for (key, entry) in entries {
            match entry {
                ArchiveEntry::Count(step) => self.load_state_step(&key, step)?,
                ArchiveEntry::Floats(dims, values) => {
                    self.load_state_buffer(&key, &dims, device.try_from_host(values)?)?
                }
            }
        }
        Ok(())
    }
}

impl<E: CheckpointElement, D: Storage<E>, O: Optimizer<E, D>> OptimizerState<E, D> for O {}
