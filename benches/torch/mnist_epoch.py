"""PyTorch side of benches/src/bin/mnist_epoch.rs (issue #13): one training epoch of the
mnist example's CNN on its 4 000 embedded digits, batch 32, Adam (lr 2e-3).

    target/parity-venv/bin/python benches/torch/mnist_epoch.py --serve WEIGHTS DATA

WEIGHTS is ferrograd's initial model saved by `model.save` (npz; its names are those of
the nested nn.Sequential below); DATA holds the 4 000 images (grey levels / 255,
row-major 28 × 28) then their labels, as raw little-endian f32. Each stdin line is a
request, answered by one line of `name=value` pairs:

    check      the loss of one step on the first 32 images, in order
    round N    on N threads: the µs of one epoch, as `epoch=µs`
"""

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGES = 4000
BATCH = 32
LR = 2e-3


def model():
    # Nested as the tuples of mnist_epoch.rs's Net, so the state_dict names match.
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10)),
    )


def load(weights, data):
    net = model()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(weights).items()})
    flat = torch.from_numpy(np.fromfile(data, dtype="<f4"))
    assert flat.numel() == IMAGES * 785, "data file of unexpected length"
    images = flat[: IMAGES * 784].reshape(IMAGES, 1, 28, 28).clone()
    labels = flat[IMAGES * 784 :].long()
    return net, images, labels


def step(net, opt, x, y):
    # Gradients freed each step, as ferrograd's side allocates fresh ones.
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss


def epoch(net, opt, images, labels, gen):
    start = time.perf_counter()
    for idx in torch.randperm(IMAGES, generator=gen).split(BATCH):
        step(net, opt, images[idx], labels[idx])
    return (time.perf_counter() - start) * 1e6


def main():
    net, images, labels = load(*sys.argv[sys.argv.index("--serve") + 1 :])
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                loss = step(net, opt, images[:BATCH], labels[:BATCH]).item()
                print(f"loss={loss:.9g}", flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                print(f"epoch={epoch(net, opt, images, labels, gen):.1f}", flush=True)
            case _:
                sys.exit(f"mnist_epoch.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
