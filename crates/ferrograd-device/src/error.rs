/// Everything that can go wrong in ferrograd, in one type.
///
/// Every fallible op `op()` has a twin `try_op()` that returns this error; `op()` panics
/// with the error's text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree do not; the message names the op and both shapes.
    #[error("{op}: {message}")]
    ShapeMismatch {
        /// The op that found the mismatch.
        op: &'static str,
        /// What disagreed, with both shapes.
        message: String,
    },
    /// An argument is outside the values the op accepts.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The op that rejected the argument.
        op: &'static str,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A buffer could not be allocated.
    #[error("out of memory: could not allocate {elements} elements of {dtype}")]
    OutOfMemory {
        /// The number of elements asked for.
        elements: usize,
        /// The element type.
        dtype: &'static str,
    },
    /// `backward` was called on a loss whose tape has already been consumed.
    #[error(
        "backward: the tape of this loss was already used by an earlier backward pass; trace the inputs again (`traced(grads)`) to record a new graph"
    )]
    TapeAlreadyConsumed,
    /// A gradient was asked for (by an optimizer, say) that backward never computed.
    #[error(
        "no gradient for {tensor}: backward did not reach it; is it used in the loss, and were its gradients allocated (`alloc_grads`) before tracing?"
    )]
    MissingGradient {
        /// The tensor: a parameter's name where the caller knows it, else its id and shape.
        tensor: String,
    },
    /// A checkpoint could not be written or read: a file that cannot be opened, keys
    /// that do not match the model's, an array of the wrong shape or dtype, a damaged
    /// file. The message names the key and what was expected.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint's file.
        path: String,
        /// What was wrong, and what was expected.
        message: String,
    },
    /// A device could not be used, or work on it failed: no driver, no such device, a
    /// driver call that returned an error, a kernel that did not compile (the message
    /// then holds the compiler's log). The message says what was being done and the
    /// cause the driver or compiler gave.
    #[error("{device}: {message}")]
    Device {
        /// The device: `cuda:0`, or `cuda` when no device was reached.
        device: String,
        /// What failed, and why.
        message: String,
    },
    /// A dataset could not be read: a missing file, a wrong magic number, sizes that
    /// disagree, a truncated or corrupt file. The message says what was wrong and what
    /// was expected.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// The file (or the dataset's name, for data that is not a file).
        path: String,
        /// What was wrong, and what was expected.
        message: String,
    },
}

impl Error {
    /// A [`Error::ShapeMismatch`] naming the op and the two shapes that disagree.
    pub fn shape_mismatch(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch {
            op,
            message: format!("lhs {} and rhs {} disagree", format_dims(lhs), format_dims(rhs)),
        }
    }
}

/// Formats sizes the way PyTorch prints a shape: `(2, 3)`, `(4,)`, `()`.
pub(crate) fn format_dims(dims: &[usize]) -> String {
    match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_mismatch_names_op_and_shapes() {
        let e = Error::shape_mismatch("add", &[2, 3], &[3]);
        assert_eq!(e.to_string(), "add: lhs (2, 3) and rhs (3,) disagree");
    }

    #[test]
    fn device_error_names_the_device() {
        let e = Error::Device {
            device: "cuda:1".into(),
            message: "no such device: 1 found".into(),
        };
        assert_eq!(e.to_string(), "cuda:1: no such device: 1 found");
    }
}
