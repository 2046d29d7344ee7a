"""PyTorch side of benches/src/bin/cpu_gaps.rs (issue #10): an MLP 784-128-64-10 built
from ops, and square f32 matmuls.

    target/parity-venv/bin/python benches/torch/cpu_gaps.py --serve DATA

DATA holds the MLP's weights, inputs and labels as raw little-endian f32, written by
cpu_gaps.rs, so that both libraries compute the same thing. Each stdin line is a request,
answered by one line of `name=value` pairs:

    check      the loss at batch 64 and 1, and the norm of the batch-64 gradients
    round N    on N threads: the median µs per iteration of each workload
"""

import math
import sys

import numpy as np
import torch

from timing import per_iteration_us

SIZES = [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
BATCH = 64
MATMUL_SIZES = [64, 128, 256, 1024, 2048]


def load(path):
    flat = torch.from_numpy(np.fromfile(path, dtype="<f4"))
    tensors = []
    for shape in SIZES + [(BATCH, 784), (BATCH,)]:
        n = math.prod(shape)
        tensors.append(flat[:n].reshape(shape).clone())
        flat = flat[n:]
    assert flat.numel() == 0, "data file longer than expected"
    *params, x, y = tensors
    return [p.requires_grad_() for p in params], x, y.long()


def logits(params, x):
    w1, b1, w2, b2, w3, b3 = params
    h = (x @ w1 + b1).relu()
    h = (h @ w2 + b2).relu()
    return h @ w3 + b3


def loss(params, x, y):
    # The op-by-op loss of cpu_gaps.rs, not the fused F.cross_entropy.
    logp = logits(params, x).log_softmax(dim=1)
    return -logp.gather(1, y[:, None]).mean()


def train_step(params, x, y):
    # Fresh gradients each time, as ferrograd's side allocates new ones.
    for p in params:
        p.grad = None
    loss(params, x, y).backward()


def check(params, x, y):
    train_step(params, x, y)
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
    with torch.no_grad():
        loss64, loss1 = float(loss(params, x, y)), float(loss(params, x[:1], y[:1]))
    return f"loss64={loss64:.9g} loss1={loss1:.9g} gnorm={norm:.9g}"


def one_round(params, x, y, matrices):
    times = {}
    x1, y1 = x[:1].clone(), y[:1].clone()
    with torch.inference_mode():
        times["mlp_infer_b1"] = per_iteration_us(lambda: logits(params, x1))
    times["mlp_train_b1"] = per_iteration_us(lambda: train_step(params, x1, y1))
    times["mlp_train_b64"] = per_iteration_us(lambda: train_step(params, x, y))
    for n, (a, b) in matrices.items():
        times[f"matmul_{n}"] = per_iteration_us(lambda: a @ b)
    return " ".join(f"{k}={v:.4f}" for k, v in times.items())


def main():
    params, x, y = load(sys.argv[sys.argv.index("--serve") + 1])
    gen = torch.Generator().manual_seed(0)
    matrices = {n: (torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)) for n in MATMUL_SIZES}
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                print(check(params, x, y), flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                print(one_round(params, x, y, matrices), flush=True)
            case _:
                sys.exit(f"cpu_gaps.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
