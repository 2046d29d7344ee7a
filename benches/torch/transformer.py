"""PyTorch side of benches/src/bin/transformer.rs (issue #13): a training step of
nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True) with mse_loss and
torch.optim.Adam.

    target/parity-venv/bin/python benches/torch/transformer.py --serve WEIGHTS DATA

WEIGHTS is ferrograd's initial layer, saved by `model.save` as npz with PyTorch's
state_dict names; DATA holds the input and the target, (16, 32, 128) each, as raw
little-endian f32. Each stdin line is a request, answered by one line of `name=value`
pairs:

    check      the losses of the first training steps
    round N    on N threads: the median µs per training step
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from timing import per_iteration_us

SHAPE = (16, 32, 128)
# As CHECK_STEPS in transformer.rs.
CHECK_STEPS = 3


def load(weights, data):
    layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(weights).items()})
    flat = torch.from_numpy(np.fromfile(data, dtype="<f4"))
    n = SHAPE[0] * SHAPE[1] * SHAPE[2]
    assert flat.numel() == 2 * n, "data file of unexpected length"
    return layer, flat[:n].reshape(SHAPE).clone(), flat[n:].reshape(SHAPE).clone()


def train_step(layer, opt, x, target):
    # Gradients freed each step, as ferrograd's side allocates fresh ones.
    opt.zero_grad(set_to_none=True)
    loss = F.mse_loss(layer(x), target)
    loss.backward()
    opt.step()
    return loss


def main():
    layer, x, target = load(*sys.argv[sys.argv.index("--serve") + 1 :])
    # Training mode, as ferrograd's forward_mut; with dropout 0 it changes nothing, but
    # it keeps PyTorch off its inference fast path, which a training step never takes.
    layer.train()
    opt = torch.optim.Adam(layer.parameters())
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                losses = [train_step(layer, opt, x, target).item() for _ in range(CHECK_STEPS)]
                print(" ".join(f"step{i + 1}={v:.9g}" for i, v in enumerate(losses)), flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                us = per_iteration_us(lambda: train_step(layer, opt, x, target))
                print(f"encoder_train={us:.4f}", flush=True)
            case _:
                sys.exit(f"transformer.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
