use crate::gradients::Gradients;
use crate::tape::OwnedTape;
use crate::tensor::Tensor;
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Rank0;

impl<E: Dtype, D: Storage<E>> Tensor<Rank0, E, D, OwnedTape<E, D>> {
    /// Computes the gradient of this scalar with respect to every tensor it was computed
    /// from, and returns them. Only a traced scalar has `backward`.
    ///
    /// # Panics
    /// As [`Tensor::try_backward`] fails.
    pub fn backward(self) -> Gradients<E, D> {
        self.try_backward().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Tensor::backward`], returning an error instead of panicking: out of memory, or
    /// a tape an earlier backward already consumed.
    pub fn try_backward(self) -> Result<Gradients<E, D>, Error> {
        let (mut ops, mut grads) = self.tape.take()?;
        // An op's output id is larger than its inputs' ids, so descending ids visit every
        // consumer of a tensor before the op that produced it.
        ops.sort_unstable_by_key(|op| std::cmp::Reverse(op.output));
        grads.set_pending(ops.iter().map(|op| op.output).collect());
        let seed = self.device.try_alloc_filled(self.buffer_len(), E::ONE)?;
        grads.put_buffer(self.id, seed);
        for op in ops {
            let Some(grad_output) = grads.take_buffer(op.output) else {
                continue; // this op's output does not reach the loss
            };
            (op.backward)(&mut grads, &grad_output)?;
            if grads.keeps(op.output) {
                grads.put_buffer(op.output, grad_output);
            }
        }
        grads.set_pending(Default::default());
        Ok(grads)
    }
}
