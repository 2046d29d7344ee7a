//! What the harness loads into: a few models (an MLP of Linear/ReLU layers, nested
//! tuples, LayerNorm, Embedding; f32 and f64), each with valid checkpoints in every
//! format under test.
//!
//! A format is a [`Format`]: how a model saves and loads it, a few valid variants of a
//! saved file, and the edits that know its structure. Adding one (safetensors, once
//! ferrograd-nn reads it) takes an `impl Format` beside [`Npz`] and one line in [`all`].

use crate::npz::Npz;
use crate::rng::Rng;
use ferrograd_autodiff::ParameterVisitor;
use ferrograd_cpu::Cpu;
use ferrograd_nn::checkpoint::CheckpointElement;
use ferrograd_nn::prelude::*;
use ferrograd_nn::{LoadOptions, LoadReport};
use std::marker::PhantomData;
use std::path::Path;

/// A checkpoint format under test.
pub trait Format: 'static {
    /// Its name in reports (`npz`).
    const NAME: &'static str;
    /// The file extension its findings are saved with.
    const EXTENSION: &'static str;
    /// A valid file taken apart, for [`Format::mutate`] to edit.
    type Parsed: 'static;

    /// Writes `model`'s checkpoint to `path`.
    fn save<E: CheckpointElement, M: Checkpoint<E, Cpu>>(model: &M, path: &Path) -> Result<(), Error>;
    /// Loads `path` into `model`: the loader under test.
    fn load<E: CheckpointElement, M: Checkpoint<E, Cpu>>(
        model: &mut M,
        path: &Path,
        options: LoadOptions,
    ) -> Result<LoadReport, Error>;
    /// Valid files holding what `saved` holds, written in each way the format allows
    /// (`saved` first): the seeds mutations start from.
    fn variants(saved: &[u8]) -> Vec<Vec<u8>>;
    /// Takes a valid file apart.
    fn parse(valid: &[u8]) -> Self::Parsed;
    /// A mutation of a valid file that knows the format's structure, logged in `log`.
    fn mutate(parsed: &Self::Parsed, rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8>;
}

/// A structure-aware mutation of a target's seed file `n`, logging what it did.
type Mutator = dyn Fn(usize, &mut Rng, &mut Vec<String>) -> Vec<u8>;

/// A model and a format: the valid files to mutate, and the loader to feed them to.
pub struct Target {
    /// `model-dtype.format`, as reports name it.
    pub name: String,
    /// The extension a finding's file gets.
    pub extension: &'static str,
    /// Valid files (the format's variants of the model's saved checkpoint).
    pub seeds: Vec<Vec<u8>>,
    mutate: Box<Mutator>,
    loader: Box<dyn Loader>,
}

impl Target {
    /// A structure-aware mutation of seed `seed`.
    pub fn mutate(&self, seed: usize, rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8> {
        (self.mutate)(seed, rng, log)
    }

    /// Loads `path` into the model (strictly or not).
    pub fn load(&mut self, path: &Path, strict: bool) -> Result<LoadReport, Error> {
        self.loader.load(path, LoadOptions { strict })
    }

    /// A hash of every parameter's name and value: a failed load must leave it as it
    /// was.
    pub fn fingerprint(&self) -> u64 {
        self.loader.fingerprint()
    }
}

/// A model behind a format's loader, with its type erased.
trait Loader {
    fn load(&mut self, path: &Path, options: LoadOptions) -> Result<LoadReport, Error>;
    fn fingerprint(&self) -> u64;
}

struct ModelLoader<F, E, M> {
    model: M,
    types: PhantomData<(F, E)>,
}

impl<F: Format, E: CheckpointElement, M: Checkpoint<E, Cpu>> Loader for ModelLoader<F, E, M> {
    fn load(&mut self, path: &Path, options: LoadOptions) -> Result<LoadReport, Error> {
        F::load(&mut self.model, path, options)
    }

    fn fingerprint(&self) -> u64 {
        struct Hash(u64);
        impl Hash {
            fn add(&mut self, bytes: &[u8]) {
                // FNV-1a: enough to see that something changed.
                for &b in bytes {
                    self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        impl<E: CheckpointElement> ParameterVisitor<E, Cpu> for Hash {
            fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, Cpu>) -> Result<(), Error> {
                self.add(name.as_bytes());
                for value in parameter.try_as_vec()? {
                    self.add(&value.to_f64().to_bits().to_le_bytes());
                }
                Ok(())
            }
        }
        let mut hash = Hash(0xcbf2_9ce4_8422_2325);
        self.model
            .visit_parameters(&mut hash)
            .expect("the models' parameters are readable");
        hash.0
    }
}

/// Saves `model` in format `F` and makes it a target.
fn target<F: Format, E: CheckpointElement, M: Checkpoint<E, Cpu> + 'static>(name: &str, model: M) -> Target {
    let path = std::env::temp_dir().join(format!("ferrograd-fuzz-seed-{}.{}", std::process::id(), F::EXTENSION));
    F::save(&model, &path).expect("saving a model's checkpoint");
    let saved = std::fs::read(&path).expect("reading back the saved checkpoint");
    let _ = std::fs::remove_file(&path);
    let seeds = F::variants(&saved);
    let parsed: Vec<F::Parsed> = seeds.iter().map(|s| F::parse(s)).collect();
    Target {
        name: format!("{name}.{}", F::NAME),
        extension: F::EXTENSION,
        seeds,
        mutate: Box::new(move |seed, rng, log| F::mutate(&parsed[seed], rng, log)),
        loader: Box::new(ModelLoader::<F, E, M> {
            model,
            types: PhantomData,
        }),
    }
}

type Mlp = (Linear<4, 8>, ReLU, Linear<8, 3>);
type Nested = ((Linear<3, 6>, ReLU), (LayerNorm<6>, (Linear<6, 2>, ReLU)));
type Embedder = (Embedding<16, 8>, LayerNorm<8>, Linear<8, 4>);
type Wide = (Linear<32, 32>, ReLU);

/// Every model in format `F`.
fn models<F: Format>() -> Vec<Target> {
    let dev = Cpu::seed_from_u64(0);
    vec![
        target::<F, f32, _>("mlp-f32", dev.build_module::<Mlp, f32>()),
        target::<F, f64, _>("mlp-f64", dev.build_module::<Mlp, f64>()),
        target::<F, f64, _>("nested-f64", dev.build_module::<Nested, f64>()),
        target::<F, f32, _>("embedding-f32", dev.build_module::<Embedder, f32>()),
        target::<F, f64, _>("wide-f64", dev.build_module::<Wide, f64>()),
    ]
}

/// Every target: each model in each format. A seed picks its target from this list, so
/// adding a format changes which input a seed names (replay with the same harness).
pub fn all() -> Vec<Target> {
    let mut targets = models::<Npz>();
    targets.extend(models::<crate::safetensors::Safetensors>());
    targets.shrink_to_fit();
    targets
}
