"""PyTorch side of benches/src/bin/conv.rs (issue #12): conv2d of an input
(64, 4, 28, 28) with a Conv2d(4, 8, 4) weight and bias, in f32.

    target/parity-venv/bin/python benches/torch/conv.py --serve DATA

DATA holds the input, weight and bias as raw little-endian f32, written by conv.rs,
so that both libraries compute the same thing. Each stdin line is a request, answered
by one line of `name=value` pairs:

    check      the sum of the output, and the sums of the weight's and bias's gradients
               of the output's sum
    round N    on N threads: the median µs per iteration of each workload
"""

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

from timing import per_iteration_us

SHAPES = [(64, 4, 28, 28), (8, 4, 4, 4), (8,)]


def load(path):
    flat = torch.from_numpy(np.fromfile(path, dtype="<f4"))
    tensors = []
    for shape in SHAPES:
        n = math.prod(shape)
        tensors.append(flat[:n].reshape(shape).clone())
        flat = flat[n:]
    assert flat.numel() == 0, "data file longer than expected"
    x, w, b = tensors
    return x.requires_grad_(), w.requires_grad_(), b.requires_grad_()


def train_step(x, w, b):
    # The gradients of the input, the weight and the bias, fresh each step as with
    # `zero_grad(set_to_none=True)`: ferrograd's `x.traced(grads)` keeps the traced
    # input's gradient too, so PyTorch's input requires one here.
    x.grad, w.grad, b.grad = None, None, None
    F.conv2d(x, w, b).sum().backward()


def main():
    x, w, b = load(sys.argv[sys.argv.index("--serve") + 1])
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                train_step(x, w, b)
                with torch.no_grad():
                    out = float(F.conv2d(x, w, b).double().sum())
                print(f"out={out:.9g} dw={float(w.grad.double().sum()):.9g} db={float(b.grad.double().sum()):.9g}", flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                times = {}
                with torch.no_grad():
                    times["forward"] = per_iteration_us(lambda: F.conv2d(x, w, b))
                times["train"] = per_iteration_us(lambda: train_step(x, w, b))
                print(" ".join(f"{k}={v:.4f}" for k, v in times.items()), flush=True)
            case _:
                sys.exit(f"conv.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
