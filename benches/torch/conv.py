"""PyTorch side of benches/src/bin/conv.rs (issue #12): conv2d cases in f32, each an
input, a weight and a bias, forward and forward + backward.

    target/parity-venv/bin/python benches/torch/conv.py --serve DATA CASE...

Each CASE is `name:N,C,H,W:O,G,KH,KW:padding:groups` (stride 1). DATA holds, case
after case, the input, weight and bias as raw little-endian f32, written by conv.rs,
so that both libraries compute the same thing. Each stdin line is a request,
answered by one line of `name=value` pairs:

    check      per case, the sum of the output (`<case>_out`) and the sums of the
               weight's and bias's gradients of the output's sum (`<case>_dw`,
               `<case>_db`)
    round N    on N threads: the median µs per iteration of each workload,
               `<case>_forward` and `<case>_train`
"""

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

from timing import per_iteration_us


def parse(case):
    name, input_dims, weight_dims, padding, groups = case.split(":")
    dims = lambda s: tuple(int(d) for d in s.split(","))
    return name, dims(input_dims), dims(weight_dims), int(padding), int(groups)


def load(path, cases):
    flat = torch.from_numpy(np.fromfile(path, dtype="<f4"))
    loaded = []
    for name, input_dims, weight_dims, padding, groups in cases:
        tensors = []
        for shape in (input_dims, weight_dims, (weight_dims[0],)):
            n = math.prod(shape)
            tensors.append(flat[:n].reshape(shape).clone().requires_grad_())
            flat = flat[n:]
        loaded.append((name, *tensors, padding, groups))
    assert flat.numel() == 0, "data file longer than expected"
    return loaded


def train_step(x, w, b, padding, groups):
    # The gradients of the input, the weight and the bias, fresh each step as with
    # `zero_grad(set_to_none=True)`: ferrograd's `x.traced(grads)` keeps the traced
    # input's gradient too, so PyTorch's input requires one here.
    x.grad, w.grad, b.grad = None, None, None
    F.conv2d(x, w, b, padding=padding, groups=groups).sum().backward()


def main():
    serve = sys.argv.index("--serve")
    cases = load(sys.argv[serve + 1], [parse(c) for c in sys.argv[serve + 2 :]])
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                sums = []
                for name, x, w, b, padding, groups in cases:
                    train_step(x, w, b, padding, groups)
                    with torch.no_grad():
                        out = float(F.conv2d(x, w, b, padding=padding, groups=groups).double().sum())
                    dw, db = float(w.grad.double().sum()), float(b.grad.double().sum())
                    sums.append(f"{name}_out={out:.9g} {name}_dw={dw:.9g} {name}_db={db:.9g}")
                print(" ".join(sums), flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                times = {}
                for name, x, w, b, padding, groups in cases:
                    with torch.no_grad():
                        times[f"{name}_forward"] = per_iteration_us(
                            lambda: F.conv2d(x, w, b, padding=padding, groups=groups)
                        )
                    times[f"{name}_train"] = per_iteration_us(lambda: train_step(x, w, b, padding, groups))
                print(" ".join(f"{k}={v:.4f}" for k, v in times.items()), flush=True)
            case _:
                sys.exit(f"conv.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
