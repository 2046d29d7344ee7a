"""PyTorch side of benches/src/bin/cnn.rs: a LeNet trained with F.cross_entropy and
torch.optim.SGD (momentum 0.9), and a ResNet-18 at inference.

    target/parity-venv/bin/python benches/torch/cnn.py --serve LENET RESNET DATA

LENET and RESNET are ferrograd's initial models, saved by `model.save` as npz with
PyTorch's state_dict names; DATA holds the LeNet's images and labels, then the ResNet's
images, as raw little-endian f32. Each stdin line is a request, answered by one line of
`name=value` pairs:

    check      the losses of a few LeNet training steps, and the sum of the magnitudes
               of the ResNet's logits
    round N    on N threads: the median µs per iteration of each workload
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from timing import per_iteration_us

# torchvision's ResNet-18, as the parity fixtures build it (torchvision is not in the venv).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "xtask", "parity"))
from models_resnet import ResNet18  # noqa: E402

LENET_BATCH = 64
RESNET_BATCH = 8
# LeNet training steps, as CHECK_STEPS in cnn.rs.
CHECK_STEPS = 3


def state(path):
    return {k: torch.from_numpy(np.asarray(v)) for k, v in np.load(path).items()}


def load(lenet_path, resnet_path, data):
    lenet = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    )
    lenet.load_state_dict(state(lenet_path))
    resnet = ResNet18()
    resnet.load_state_dict(state(resnet_path))
    resnet.eval()
    flat = torch.from_numpy(np.fromfile(data, dtype="<f4"))
    sizes = [LENET_BATCH * 784, LENET_BATCH, RESNET_BATCH * 3 * 64 * 64]
    assert flat.numel() == sum(sizes), "data file of unexpected length"
    x, y, photos = torch.split(flat, sizes)
    return lenet, resnet, x.reshape(LENET_BATCH, 1, 28, 28).clone(), y.long(), photos.reshape(RESNET_BATCH, 3, 64, 64).clone()


def train_step(model, opt, x, y):
    # Gradients freed each step, as ferrograd's side allocates fresh ones.
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def check(lenet, opt, resnet, x, y, photos):
    losses = [train_step(lenet, opt, x, y).item() for _ in range(CHECK_STEPS)]
    pairs = [f"lenet_step{i + 1}={v:.9g}" for i, v in enumerate(losses)]
    with torch.no_grad():
        logits = float(resnet(photos).double().abs().sum())
    return " ".join(pairs + [f"resnet_logits={logits:.9g}"])


def one_round(lenet, opt, resnet, x, y, photos):
    times = {"lenet_train_b64": per_iteration_us(lambda: train_step(lenet, opt, x, y))}
    with torch.no_grad():
        times["resnet18_infer_b8"] = per_iteration_us(lambda: resnet(photos))
    return " ".join(f"{k}={v:.4f}" for k, v in times.items())


def main():
    args = sys.argv[sys.argv.index("--serve") + 1 :]
    lenet, resnet, x, y, photos = load(*args)
    opt = torch.optim.SGD(lenet.parameters(), lr=0.01, momentum=0.9)
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                print(check(lenet, opt, resnet, x, y, photos), flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                print(one_round(lenet, opt, resnet, x, y, photos), flush=True)
            case _:
                sys.exit(f"cnn.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
