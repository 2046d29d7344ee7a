"""Trains a small MLP with PyTorch on the embedded digits and saves what
`cargo run --release --example interop` checks against: its `state_dict` as npz and
its logits on the 1 000 held-out digits.

    target/parity-venv/bin/python examples/interop/train_pytorch.py  # needs torch, numpy

Writes `pytorch_mlp.npz` (keys `0.weight`, `0.bias`, `2.weight`, `2.bias`, as
`nn.Sequential` names them) and `pytorch_logits.npz` (key `logits`, float32 (1000, 10))
beside this script. Both are committed, so the Rust example needs no Python.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from digits import split_per_class

HERE = Path(__file__).resolve().parent


def main():
    torch.manual_seed(0)
    train_x, train_y, test_x, test_y = split_per_class(400)
    train_x, train_y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    test_x = torch.from_numpy(test_x)

    # ferrograd's (Linear<784, 64>, ReLU, Linear<64, 10>).
    model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(8):
        order = torch.randperm(len(train_y))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            loss = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    model.eval()
    with torch.no_grad():
        logits = model(test_x).numpy().astype(np.float32)
    accuracy = (logits.argmax(1) == test_y).mean()
    print(f"PyTorch {torch.__version__}: held-out accuracy {100 * accuracy:.2f} %")

    # np.savez stores the arrays uncompressed, as ferrograd's own checkpoints are.
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    np.savez(HERE / "pytorch_mlp.npz", **state)
    np.savez(HERE / "pytorch_logits.npz", logits=logits)
    print(f"wrote {HERE / 'pytorch_mlp.npz'} ({', '.join(state)}) and {HERE / 'pytorch_logits.npz'}")


if __name__ == "__main__":
    main()
