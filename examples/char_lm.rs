//! A character-level transformer language model, trained on Shakespeare's sonnets for
//! about a minute, then sampled.
//!
//! ```sh
//! cargo run --release --example char_lm                      # about a minute
//! cargo run --release --example char_lm -- --steps 150       # a few seconds
//! cargo run --release --example char_lm -- --help
//! ```
//!
//! The text (`examples/data/sonnets.txt`, public domain; see the README beside it) is
//! built into the program. Its last tenth is held out: the model never trains on it,
//! and its loss there is compared with the unigram entropy of the text, the loss of
//! the best model that ignores context (each character drawn with its frequency). The
//! example exits with an error unless the held-out loss is below `--max-loss-ratio`
//! times that entropy, that is, unless it learnt to use the characters before.
//!
//! The model is a small GPT: token and position embeddings, pre-norm transformer
//! layers whose self-attention is causal (position `i` sees positions `0..=i` only, so
//! predicting character `i + 1` cannot peek at it), a final layer norm and a linear
//! head to one logit per byte. PyTorch's equivalent of its layers:
//!
//! ```python
//! tok_emb = nn.Embedding(128, 64); pos_emb = nn.Embedding(64, 64)
//! layer = nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, norm_first=True, batch_first=True)
//! encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(64))
//! head = nn.Linear(64, 128)
//! # logits = head(encoder(tok_emb(ids) + pos_emb(positions), is_causal=True, mask=causal))
//! ```

use clap::Parser;
use ferrograd::autodiff::{MergeTapes, ParameterVisitor, ParameterVisitorMut, Prefixed};
use ferrograd::nn::built::{Embedding as BuiltEmbedding, Linear as BuiltLinear, TransformerEncoder as BuiltEncoder};
use ferrograd::nn::{AttentionMasks, TransformerEncoderConfig, TransformerEncoderLayerConfig};
use ferrograd::prelude::*;
use ferrograd::shapes::Const;
use std::process::ExitCode;
use std::time::Instant;

/// The training text, built into the program so that it runs from anywhere.
const TEXT: &str = include_str!("data/sonnets.txt");

/// One logit per ASCII byte: the text is ASCII (checked at start), so a byte is its
/// own token and no vocabulary needs building or saving.
const VOCAB: usize = 128;
/// Characters of context the model sees.
const SEQ: usize = 64;
/// Features per position.
const D_MODEL: usize = 64;
/// Attention heads (16 features each).
const HEADS: usize = 4;
/// Features in each layer's feed-forward block.
const FF: usize = 256;
/// Transformer layers.
const LAYERS: usize = 2;
/// Sequences per training step.
const BATCH: usize = 16;
/// Positions per training step, each predicting its next character.
const TOKENS: usize = BATCH * SEQ;

/// Train a character-level transformer on Shakespeare's sonnets, then sample from it.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
struct Args {
    /// Stop training after this many seconds (whichever of this and --steps comes first).
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Stop training after this many steps of 16 sequences of 64 characters.
    #[arg(long, default_value_t = usize::MAX, hide_default_value = true)]
    steps: usize,
    /// AdamW's learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Seeds the initial weights, the training windows and the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the kernels (default: FERROGRAD_NUM_THREADS, else every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Characters to generate after training.
    #[arg(long, default_value_t = 400)]
    sample_len: usize,
    /// The sampling temperature: below 1 sharpens the model's distribution (safer,
    /// more repetitive text), above 1 flattens it; 0 takes the likeliest character.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// The text generation starts from.
    #[arg(long, default_value = "Shall I compare thee")]
    prompt: String,
    /// Fail (exit code 1) unless the held-out loss is below this fraction of the
    /// unigram entropy.
    #[arg(long, default_value_t = 0.8)]
    max_loss_ratio: f64,
}

/// The model: named as PyTorch's `state_dict` would name these fields.
struct CharLm {
    tok_emb: BuiltEmbedding<Const<VOCAB>, Const<D_MODEL>, f32, Cpu>,
    pos_emb: BuiltEmbedding<Const<SEQ>, Const<D_MODEL>, f32, Cpu>,
    encoder: BuiltEncoder<Const<D_MODEL>, Const<HEADS>, Const<FF>, f32, Cpu>,
    head: BuiltLinear<Const<D_MODEL>, Const<VOCAB>, f32, Cpu>,
}

impl CharLm {
    fn build(dev: &Cpu) -> Result<Self, Error> {
        let layer = TransformerEncoderLayerConfig {
            // The text is small but a minute of training sees it only a few times:
            // dropout would slow learning more than it would curb over-fitting.
            dropout: 0.0,
            // Pre-norm (GPT's arrangement) trains stably at a higher learning rate
            // than PyTorch's default post-norm.
            norm_first: true,
            ..TransformerEncoderLayer::<D_MODEL, HEADS, FF>::default()
        };
        Ok(Self {
            tok_emb: dev.try_build_module::<Embedding<VOCAB, D_MODEL>, f32>()?,
            pos_emb: dev.try_build_module::<Embedding<SEQ, D_MODEL>, f32>()?,
            encoder: dev
                .try_build_module_with::<_, f32>(TransformerEncoderConfig::new(layer, Const::<LAYERS>).with_norm())?,
            head: dev.try_build_module::<Linear<D_MODEL, VOCAB>, f32>()?,
        })
    }

    /// Logits `(B, SEQ, VOCAB)`: at position `i`, the scores of the character after
    /// `ids[.., i]`, computed from `ids[.., 0..=i]` only. Training and inference run
    /// the same pass, since the model has no dropout (with dropout, training would call
    /// the encoder's `try_forward_masked_mut`, through a `&mut self`).
    fn forward<const B: usize, T>(
        &self,
        ids: Tensor<Rank2<B, SEQ>, usize, Cpu, T>,
    ) -> Result<Tensor<Rank3<B, SEQ, VOCAB>, f32, Cpu, T>, Error>
    where
        T: Tape<f32, Cpu> + MergeTapes<T, Output = T>,
    {
        let dev = ids.device().clone();
        // Both embeddings must record onto the step's tape, for both tables to get
        // gradients: the ids lend it to the positions (clones of a tape share it).
        let (ids, tape) = ids.split_tape();
        let positions = dev.try_tensor_from_vec((0..B * SEQ).map(|i| i % SEQ).collect(), (Const::<B>, Const::<SEQ>))?;
        let tokens = self.tok_emb.try_forward(ids.put_tape(tape.clone()))?;
        let x = tokens.try_add(self.pos_emb.try_forward(positions.put_tape(tape))?)?;
        let x = self.encoder.try_forward_masked(x, &AttentionMasks::new().causal())?;
        self.head.try_forward(x)
    }
}

impl VisitParameters<f32, Cpu> for CharLm {
    fn visit_parameters<V: ParameterVisitor<f32, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.tok_emb.visit_parameters(&mut Prefixed::new("tok_emb", visitor))?;
        self.pos_emb.visit_parameters(&mut Prefixed::new("pos_emb", visitor))?;
        self.encoder.visit_parameters(&mut Prefixed::new("encoder", visitor))?;
        self.head.visit_parameters(&mut Prefixed::new("head", visitor))
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f32, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.tok_emb
            .visit_parameters_mut(&mut Prefixed::new("tok_emb", visitor))?;
        self.pos_emb
            .visit_parameters_mut(&mut Prefixed::new("pos_emb", visitor))?;
        self.encoder
            .visit_parameters_mut(&mut Prefixed::new("encoder", visitor))?;
        self.head.visit_parameters_mut(&mut Prefixed::new("head", visitor))
    }
}

/// SplitMix64: a few lines of seeded randomness for picking windows and sampling,
/// identical on every platform and independent of any crate's version.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`, from the top 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    if let Some(threads) = args.threads {
        ferrograd::try_set_num_threads(threads)?;
    }
    if !(0.0..=100.0).contains(&args.temperature) {
        return Err(format!("--temperature {} is not in [0, 100]", args.temperature).into());
    }
    let text: Vec<usize> = TEXT.bytes().map(usize::from).collect();
    if let Some(&byte) = text.iter().find(|&&b| b >= VOCAB) {
        return Err(format!("the text has a non-ASCII byte {byte:#x}").into());
    }
    // The last tenth is held out, cut at a line break so no line is split.
    let cut = TEXT[..TEXT.len() * 9 / 10]
        .rfind('\n')
        .map_or(TEXT.len() * 9 / 10, |i| i + 1);
    let (train, held_out) = text.split_at(cut);
    let unigram = unigram_entropy(train);
    println!(
        "Shakespeare's sonnets: {} characters to train on, {} held out; unigram entropy {unigram:.3} nats/char, {} threads",
        train.len(),
        held_out.len(),
        ferrograd::num_threads()
    );

    let dev = Cpu::seed_from_u64(args.seed);
    let mut model = CharLm::build(&dev)?;
    println!(
        "model: {LAYERS} causal transformer layers of {D_MODEL} features, {HEADS} heads, context {SEQ}; {} parameters",
        model.num_parameters()?
    );
    let mut optimizer = AdamW::new(AdamWConfig {
        lr: args.lr,
        ..Default::default()
    })?;
    let mut rng = Rng(args.seed);

    // Each step: 16 windows at random offsets; the targets are the inputs shifted by one.
    let (mut step, mut running, mut last_print) = (0usize, 0.0f64, Instant::now());
    let training = Instant::now();
    while step < args.steps && training.elapsed().as_secs_f64() < args.seconds {
        let (inputs, targets) = batch(train, &mut rng);
        let ids: Tensor<Rank2<BATCH, SEQ>, usize, Cpu> = dev.try_tensor_from_vec(inputs, Default::default())?;
        let targets: Tensor<Rank1<TOKENS>, usize, Cpu> = dev.try_tensor_from_vec(targets, Default::default())?;
        let logits = model.forward(ids.traced_indices(model.try_alloc_grads()?))?;
        let logits = logits.reshape::<Rank2<TOKENS, VOCAB>>();
        let loss = losses::try_cross_entropy(logits, &targets, Reduction::Mean, Default::default())?;
        let value = f64::from(loss.array());
        optimizer.step(&mut model, &loss.try_backward()?)?;
        running = if step == 0 {
            value
        } else {
            0.95 * running + 0.05 * value
        };
        step += 1;
        if step == 1 || last_print.elapsed().as_secs_f64() >= 5.0 {
            let seconds = training.elapsed().as_secs_f64();
            println!("step {step:5}  {seconds:5.1} s  loss {running:.3} (running mean)");
            last_print = Instant::now();
        }
    }
    let seconds = training.elapsed().as_secs_f64();
    let loss = held_out_loss(&model, held_out)?;
    println!(
        "trained {step} steps in {seconds:.1} s ({:.0} characters/s); held-out loss {loss:.3} nats/char = {:.2} × the unigram entropy",
        (step * TOKENS) as f64 / seconds.max(1e-9),
        loss / unigram
    );

    let sample = generate(&model, &args.prompt, args.sample_len, args.temperature, &mut rng)?;
    println!("\nsampled at temperature {}:\n---\n{sample}\n---", args.temperature);
    println!("{:.1} s in all", started.elapsed().as_secs_f64());
    if loss.is_nan() || loss >= args.max_loss_ratio * unigram {
        return Err(format!(
            "held-out loss {loss:.3} is not below --max-loss-ratio {} × the unigram entropy {unigram:.3}",
            args.max_loss_ratio
        )
        .into());
    }
    Ok(())
}

/// `−Σ p log p` over the characters' frequencies in `text`, in nats: the cross-entropy
/// of the best prediction that ignores context.
fn unigram_entropy(text: &[usize]) -> f64 {
    let mut counts = [0usize; VOCAB];
    for &c in text {
        counts[c] += 1;
    }
    let n = text.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// `BATCH` random windows of `text`: the inputs and, shifted by one, the targets.
fn batch(text: &[usize], rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let (mut inputs, mut targets) = (Vec::with_capacity(TOKENS), Vec::with_capacity(TOKENS));
    for _ in 0..BATCH {
        let start = rng.below(text.len() - SEQ);
        inputs.extend_from_slice(&text[start..start + SEQ]);
        targets.extend_from_slice(&text[start + 1..start + SEQ + 1]);
    }
    (inputs, targets)
}

/// The mean loss over consecutive windows of `text` (inference mode, no tape), each
/// position predicting the next character.
fn held_out_loss(model: &CharLm, text: &[usize]) -> Result<f64> {
    let dev = model.head.weight.device().clone();
    let starts: Vec<usize> = (0..text.len().saturating_sub(SEQ + 1)).step_by(SEQ).collect();
    let (mut total, mut count) = (0.0f64, 0usize);
    for group in starts.chunks(BATCH).filter(|g| g.len() == BATCH) {
        let inputs = group.iter().flat_map(|&s| text[s..s + SEQ].iter().copied()).collect();
        let targets = group
            .iter()
            .flat_map(|&s| text[s + 1..s + SEQ + 1].iter().copied())
            .collect();
        let ids: Tensor<Rank2<BATCH, SEQ>, usize, Cpu> = dev.try_tensor_from_vec(inputs, Default::default())?;
        let targets: Tensor<Rank1<TOKENS>, usize, Cpu> = dev.try_tensor_from_vec(targets, Default::default())?;
        let logits = model.forward(ids)?.reshape::<Rank2<TOKENS, VOCAB>>();
        let loss = losses::try_cross_entropy(logits, &targets, Reduction::Mean, Default::default())?;
        total += f64::from(loss.array());
        count += 1;
    }
    Ok(total / count.max(1) as f64)
}

/// `prompt` followed by `length` characters, each drawn from the model's distribution
/// given (up to) the `SEQ` characters before it, sharpened by `temperature`.
fn generate(model: &CharLm, prompt: &str, length: usize, temperature: f64, rng: &mut Rng) -> Result<String> {
    let dev = model.head.weight.device().clone();
    let mut text: Vec<usize> = prompt.bytes().map(usize::from).filter(|&b| b < VOCAB).collect();
    if text.is_empty() {
        text.push(usize::from(b'\n'));
    }
    for _ in 0..length {
        // The last SEQ characters, padded on the right: causal attention means the
        // padding cannot change the logits at the last real position, which we read.
        let context = &text[text.len().saturating_sub(SEQ)..];
        let mut window = context.to_vec();
        window.resize(SEQ, usize::from(b' '));
        let ids: Tensor<Rank2<1, SEQ>, usize, Cpu> = dev.try_tensor_from_vec(window, Default::default())?;
        let logits = model.forward(ids)?.as_vec();
        let at = (context.len() - 1) * VOCAB;
        text.push(sample(&logits[at..at + VOCAB], temperature, rng));
    }
    Ok(text.iter().map(|&b| char::from(b as u8)).collect())
}

/// An index drawn with probability `softmax(logits / temperature)`; the largest logit
/// at temperature 0.
fn sample(logits: &[f32], temperature: f64, rng: &mut Rng) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let argmax = logits.iter().position(|&l| l == max).unwrap_or(0);
    if temperature == 0.0 {
        return argmax;
    }
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| ((f64::from(l) - f64::from(max)) / temperature).exp())
        .collect();
    let mut threshold = rng.uniform() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        threshold -= w;
        if threshold < 0.0 {
            return i;
        }
    }
    argmax
}
