use crate::OrPanic;
use crate::gradients::Gradients;
use crate::sparse::SparseGrad;
use crate::tape::{OwnedTape, Recording, ResolvedInput, Tape, Target};
use crate::tensor::Tensor;
use ferrograd_device::{Dtype, Error, Input, Storage, Unit};
use ferrograd_shapes::{Rank0, Shape};

/// Marks the tapes `backward` can run on: a tensor without one was never traced, so
/// no gradient could reach anything, and calling `backward` is a compile error that
/// says so.
#[diagnostic::on_unimplemented(
    message = "`backward` needs a traced tensor, and this one is not traced (its tape is `{Self}`)",
    label = "not traced: no op on this path was recorded",
    note = "start recording on an input before the ops: `x.traced(grads)` in a training loop (with `grads` from `alloc_grads`), or `x.leaky_trace()` to keep every gradient"
)]
pub trait TracedTape<E: Unit, D: Storage<E>>: Tape<E, D> {
    /// The recording tape.
    #[doc(hidden)]
    fn as_owned(&self) -> &OwnedTape<E, D>;
}

impl<E: Unit, D: Storage<E>> TracedTape<E, D> for OwnedTape<E, D> {
    fn as_owned(&self) -> &OwnedTape<E, D> {
        self
    }
}

/// Marks the shape `backward` needs: a scalar, the loss.
#[diagnostic::on_unimplemented(
    message = "`backward` needs a scalar loss, and this tensor has shape `{Self}`",
    label = "not a scalar",
    note = "reduce it to a scalar first, e.g. `.sum::<Rank0, _>()` or `.mean::<Rank0, _>()`"
)]
pub trait ScalarShape: Shape {}

impl ScalarShape for Rank0 {}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Computes the gradient of this scalar with respect to every tensor it was computed
    /// from, and returns them. Only a traced scalar has `backward`: on anything else it
    /// does not compile, with an error saying what is missing.
    ///
    /// # Panics
    /// As [`Tensor::try_backward`] fails.
    #[track_caller]
    pub fn backward(self) -> Gradients<E, D>
    where
        S: ScalarShape,
        T: TracedTape<E, D>,
    {
        self.try_backward().or_panic()
    }

    /// [`Tensor::backward`], returning an error instead of panicking: out of memory, or
    /// a tape an earlier backward already consumed.
    pub fn try_backward(self) -> Result<Gradients<E, D>, Error>
    where
        S: ScalarShape,
        T: TracedTape<E, D>,
    {
        let loss = self.tape.op_input(self.id, self.buffer_len());
        let (recording, loss_target) = self.tape.as_owned().take(loss)?;
        let mut recording = recording;
        let Recording { ops, steps, grads, .. } = &mut recording;
        grads.set_device(&self.device);

        // The loss may be a view into a larger buffer (a slice of an op's output, say):
        // seed only the element it reads, at its offset.
        let seed = if self.layout.offset() == 0 && loss.len() == 1 {
            self.device.try_alloc_filled(1, E::ONE)?
        } else {
            let mut host = vec![E::ZERO; loss.len()];
            host[self.layout.offset()] = E::ONE;
            self.device.try_from_host(host)?
        };
        let mut nodes: Vec<Option<D::Vec>> = Vec::new();
        nodes.resize_with(ops.len(), || None);
        match loss_target {
            Target::Node(index) => nodes[index as usize] = Some(seed),
            Target::Leaf(id) => grads.add_leaf(id, seed, &self.device)?,
        }

        let keep_intermediate = grads.is_leaky();
        for (index, op) in ops.iter_mut().enumerate().rev() {
            let Some(grad_output) = nodes[index].take() else {
                continue; // this op's output does not reach the loss
            };
            let Some(step) = op.step.take() else {
                continue;
            };
            let mut context = BackwardContext {
                device: &self.device,
                grad_output: Some(grad_output),
                keep_output: keep_intermediate,
                inputs: op.inputs.as_slice(),
                nodes: &mut nodes[..index],
                grads,
            };
            steps.call(step, &mut context)?;
            if let Some(grad_output) = context.grad_output.take()
                && keep_intermediate
            {
                grads.put(op.output, grad_output);
            }
        }
        grads.settle(&self.device)?;
        Ok(std::mem::take(grads))
    }
}

/// What a backward step sees: the gradient of its op's output, and the gradients of
/// the op's inputs to write or add to, by input position (the order of the inputs given
/// to [`Tensor::record_op`]).
///
/// An input's gradient is a buffer as long as that input's whole buffer (an
/// [`OpInput::len`](crate::OpInput::len)), addressed through the input's layout, so a
/// view's gradient lands in the part of its base buffer it reads.
pub struct BackwardContext<'a, E: Unit, D: Storage<E>> {
    pub(crate) device: &'a D,
    grad_output: Option<D::Vec>,
    keep_output: bool,
    inputs: &'a [ResolvedInput],
    /// Gradients of the ops recorded before this one, by node number.
    nodes: &'a mut [Option<D::Vec>],
    grads: &'a mut Gradients<E, D>,
}

impl<'a, E: Unit, D: Storage<E>> BackwardContext<'a, E, D> {
    /// A context with no inputs and no output gradient, for unit tests of steps.
    #[cfg(test)]
    pub(crate) fn for_test(device: &'a D, grads: &'a mut Gradients<E, D>) -> Self {
        Self {
            device,
            grad_output: None,
            keep_output: false,
            inputs: &[],
            nodes: &mut [],
            grads,
        }
    }
}

impl<'a, E: Dtype, D: Storage<E>> BackwardContext<'a, E, D> {
    /// The device.
    pub fn device(&self) -> &D {
        self.device
    }

    /// The number of inputs the op was recorded with.
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// The gradient of the op's output: contiguous, one element per output element.
    ///
    /// # Panics
    /// After [`BackwardContext::take_grad_output`] took it.
    pub fn grad_output(&self) -> &D::Vec {
        self.grad_output
            .as_ref()
            .expect("BackwardContext::grad_output called after take_grad_output")
    }

    /// The gradient of the op's output, moved out when nothing else needs it (it is not
    /// kept for the user), so a step can reuse its buffer; `None` when it must stay.
    /// After this, [`BackwardContext::grad_output`] panics; call it last.
    pub fn take_grad_output(&mut self) -> Option<D::Vec> {
        if self.keep_output {
            None
        } else {
            self.grad_output.take()
        }
    }

    /// Runs `f` with the output's gradient beside the context, so `f` can read the one
    /// while writing the inputs' gradients through the other. Inside `f`,
    /// [`BackwardContext::grad_output`] panics (the gradient is lent to `f`).
    pub fn with_grad_output<R>(&mut self, f: impl FnOnce(&mut Self, &D::Vec) -> R) -> R {
        let grad_output = self
            .grad_output
            .take()
            .expect("BackwardContext::with_grad_output called after take_grad_output");
        let result = f(self, &grad_output);
        self.grad_output = Some(grad_output);
        result
    }

    /// [`BackwardContext::with_grad_output`], handing the gradient to `f` as a kernel
    /// input: `Unique` (its buffer reusable for an input's gradient) when nothing else
    /// needs it, `Shared` otherwise. Call it last: the gradient may be gone afterwards.
    pub fn with_grad_output_input<R>(&mut self, f: impl FnOnce(&mut Self, Input<'_, D::Vec>) -> R) -> R {
        let grad_output = self
            .grad_output
            .take()
            .expect("BackwardContext::with_grad_output_input called after take_grad_output");
        if self.keep_output {
            let result = f(self, Input::Shared(&grad_output));
            self.grad_output = Some(grad_output);
            result
        } else {
            f(self, Input::Unique(grad_output))
        }
    }

    /// The number of elements of input `input`'s gradient buffer.
    pub fn input_len(&self, input: usize) -> usize {
        self.inputs[input].len
    }

    /// Whether anyone reads the gradient of input `input`: an input no op computed is
    /// skipped unless the gradients keep it (allocated for it, traced, or leaky).
    pub fn wants(&self, input: usize) -> bool {
        match self.inputs[input].target {
            Target::Node(_) => true,
            Target::Leaf(id) => self.grads.keeps(id),
        }
    }

    /// The gradient of input `input`, to write or add to: `None` when nobody wants it
    /// (skip computing it), `Some(None)` for the first contribution (store a buffer of
    /// [`BackwardContext::input_len`] elements), `Some(Some(buffer))` to add to.
    pub fn grad_entry(&mut self, input: usize) -> Option<&mut Option<D::Vec>> {
        match self.inputs[input].target {
            Target::Node(index) => Some(&mut self.nodes[index as usize]),
            Target::Leaf(id) => self.grads.leaf_entry(id),
        }
    }

    /// The gradient of input `input` to add to, allocated as zeros on first use; `None`
    /// when nobody wants it.
    pub fn grad_mut(&mut self, input: usize) -> Result<Option<&mut D::Vec>, Error> {
        let len = self.inputs[input].len;
        let device = self.device;
        match self.grad_entry(input) {
            None => Ok(None),
            Some(entry) => {
                if entry.is_none() {
                    *entry = Some(device.try_alloc_zeros(len)?);
                }
                Ok(entry.as_mut())
            }
        }
    }

    /// Adds a row-sparse contribution to input `input`'s gradient: what an op that
    /// touches a few rows of a table (an embedding) writes instead of a dense buffer.
    ///
    /// Where it lands: a parameter whose gradient is sparse ([`Gradients::try_alloc_sparse_for`],
    /// or a leaky set, or nothing yet) gets the rows merged into its sparse gradient;
    /// a parameter or an intermediate result whose gradient is dense gets the rows
    /// added into it. Nothing happens when nobody wants the gradient (check
    /// [`BackwardContext::wants`] first to skip building `grad`).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `grad`'s table does not have the input's
    /// [`BackwardContext::input_len`] elements, or does not match the sparse gradient
    /// already held.
    pub fn add_sparse_grad(&mut self, input: usize, grad: SparseGrad<E, D>) -> Result<(), Error> {
        let len = self.inputs[input].len;
        if grad.num_rows().checked_mul(grad.row_len()) != Some(len) {
            return Err(Error::ShapeMismatch {
                op: "add_sparse_grad",
                message: format!(
                    "a sparse gradient of a {} × {} table cannot be the gradient of input {input}, whose buffer has {len} elements",
                    grad.num_rows(),
                    grad.row_len()
                ),
            });
        }
        match self.inputs[input].target {
            Target::Node(index) => {
                let slot = &mut self.nodes[index as usize];
                if slot.is_none() {
                    *slot = Some(self.device.try_alloc_zeros(len)?);
                }
                match slot {
                    Some(dense) => grad.try_add_to_dense(dense, self.device),
                    None => Ok(()),
                }
            }
            Target::Leaf(id) => self.grads.add_sparse_leaf(id, grad, self.device),
        }
    }
}
