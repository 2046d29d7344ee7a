"""PyTorch side of benches/src/bin/nn_mlp.rs (issue #11): an MLP 784-128-64-10 as
nn.Sequential, trained with F.cross_entropy and torch.optim.Adam.

    target/parity-venv/bin/python benches/torch/nn_mlp.py --serve WEIGHTS DATA

WEIGHTS is ferrograd's initial model, saved by `model.save` as npz with PyTorch's
state_dict names; DATA holds the inputs and labels as raw little-endian f32. Each stdin
line is a request, answered by one line of `name=value` pairs:

    check      the losses of a few training steps and the batch-1 logits after them
    round N    on N threads: the median µs per iteration of each workload
    memory N S…  on N threads, train at batch 64 up to each step count S in turn,
                 answering the resident memory (VmRSS) in MB after each, as `rss_S=MB`
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from timing import per_iteration_us

BATCH = 64
# Training steps at batch 64, then at batch 1, as CHECK_STEPS in nn_mlp.rs.
CHECK_STEPS = (3, 2)


def load(weights, data):
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(weights).items()})
    flat = torch.from_numpy(np.fromfile(data, dtype="<f4"))
    assert flat.numel() == BATCH * 785, "data file of unexpected length"
    x = flat[: BATCH * 784].reshape(BATCH, 784).clone()
    y = flat[BATCH * 784 :].long()
    return model, x, y


def train_step(model, opt, x, y):
    # Gradients freed each step, as ferrograd's side allocates fresh ones.
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def check(model, opt, x, y):
    x1, y1 = x[:1], y[:1]
    losses = [train_step(model, opt, x, y) for _ in range(CHECK_STEPS[0])]
    losses += [train_step(model, opt, x1, y1) for _ in range(CHECK_STEPS[1])]
    names = [f"b64_step{i + 1}" for i in range(CHECK_STEPS[0])] + [f"b1_step{i + 1}" for i in range(CHECK_STEPS[1])]
    with torch.inference_mode():
        logits = float(model(x1).abs().sum())
    pairs = [f"{n}={v.item():.9g}" for n, v in zip(names, losses)]
    return " ".join(pairs + [f"logits_b1={logits:.9g}"])


def one_round(model, opt, x, y):
    x1, y1 = x[:1].clone(), y[:1].clone()
    times = {
        "train_b64": per_iteration_us(lambda: train_step(model, opt, x, y)),
        "train_b1": per_iteration_us(lambda: train_step(model, opt, x1, y1)),
    }
    with torch.inference_mode():
        times["infer_b1"] = per_iteration_us(lambda: model(x1))
    return " ".join(f"{k}={v:.4f}" for k, v in times.items())


def resident_mb():
    # VmRSS in /proc/self/status, as resident_kb() in nn_mlp.rs reads it.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory(model, opt, x, y, counts):
    done, figures = 0, []
    for count in counts:
        while done < count:
            train_step(model, opt, x, y)
            done += 1
        figures.append(f"rss_{count}={resident_mb():.3f}")
    return " ".join(figures)


def main():
    args = sys.argv[sys.argv.index("--serve") + 1 :]
    model, x, y = load(*args)
    opt = torch.optim.Adam(model.parameters())
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                print(check(model, opt, x, y), flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                print(one_round(model, opt, x, y), flush=True)
            case ["memory", threads, *counts]:
                torch.set_num_threads(int(threads))
                print(memory(model, opt, x, y, [int(c) for c in counts]), flush=True)
            case _:
                sys.exit(f"nn_mlp.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
