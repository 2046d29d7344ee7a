"""PyTorch side of benches/src/bin/tape.rs: the overhead of the autograd tape on tiny
tensors, where the arithmetic is nothing and the bookkeeping is everything.

    target/parity-venv/bin/python benches/torch/tape.py          # one round
    target/parity-venv/bin/python benches/torch/tape.py --serve  # one round per stdin line

tape.rs starts this with --serve and asks for a round between its own, so that both
libraries see the same machine noise. Each round prints one line of `name=µs` pairs, the
median time per iteration over timing.BATCHES batches of about timing.BATCH_S seconds each.
"""

import sys

import torch

from timing import per_iteration_us

torch.set_num_threads(1)


x = torch.tensor([0.1, -0.2, 0.3, -0.4], requires_grad=True)
w = torch.tensor([0.5, 0.25, -0.75, 1.0], requires_grad=True)


def chain(y):
    for _ in range(5):
        y = (y * 1.01 + 0.1).tanh()
    return y.sum()


# Gradients start from None each iteration, as after optimizer.zero_grad() and as
# ferrograd's side starts from fresh Gradients: nothing accumulates across iterations.
def chain_traced():
    x.grad = None
    chain(x).backward()


def add_traced():
    x.grad = None
    w.grad = None
    (x + w).sum().backward()


def sum_traced():
    x.grad = None
    w.grad = None
    x.sum().backward()


def one_round():
    times = {"chain_traced": per_iteration_us(chain_traced)}
    plain = x.detach()
    with torch.no_grad():
        times["chain_untraced"] = per_iteration_us(lambda: chain(plain))
    times["add"] = per_iteration_us(add_traced)
    times["sum"] = per_iteration_us(sum_traced)
    return " ".join(f"{k}={v:.4f}" for k, v in times.items())


def main():
    # The results must be right, or the figures mean nothing.
    chain_traced()
    expected = torch.ones(4)
    y = x.detach()
    for _ in range(5):
        z = y * 1.01 + 0.1
        y = z.tanh()
        expected = expected * (1 - y * y) * 1.01
    assert torch.allclose(x.grad, expected), (x.grad, expected)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", flush=True)
    if "--serve" in sys.argv[1:]:
        for _ in sys.stdin:
            print(one_round(), flush=True)
    else:
        print(one_round())


if __name__ == "__main__":
    main()
