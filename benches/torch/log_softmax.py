"""PyTorch side of benches/src/bin/log_softmax.rs (issue #13): log_softmax over the last
axis of a 64×128×1024 f32 tensor, forward and forward + backward of its sum.

    target/parity-venv/bin/python benches/torch/log_softmax.py --serve

The input is built from the same formula as log_softmax.rs's. Each stdin line is a
request, answered by one line of `name=value` pairs:

    check      the output's sum and the norm of the input's gradient
    round N    on N threads: the median µs per iteration of each workload
"""

import sys

import torch

from timing import per_iteration_us

SHAPE = (64, 128, 1024)


def make_input():
    # (i · 7919 mod 1000) / 100 − 5, as input() in log_softmax.rs.
    i = torch.arange(SHAPE[0] * SHAPE[1] * SHAPE[2], dtype=torch.int64)
    return ((i * 7919) % 1000).to(torch.float32).div(100.0).sub(5.0).reshape(SHAPE)


def train(x):
    # Fresh gradient each time, as ferrograd's side allocates new ones.
    x.grad = None
    x.log_softmax(dim=-1).sum().backward()


def main():
    x = make_input().requires_grad_()
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                with torch.no_grad():
                    total = float(x.log_softmax(dim=-1).double().sum())
                train(x)
                norm = float(x.grad.double().norm())
                print(f"sum={total:.9g} gnorm={norm:.9g}", flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                plain = x.detach()
                with torch.inference_mode():
                    forward = per_iteration_us(lambda: plain.log_softmax(dim=-1))
                both = per_iteration_us(lambda: train(x))
                print(f"forward={forward:.4f} train={both:.4f}", flush=True)
            case _:
                sys.exit(f"log_softmax.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
