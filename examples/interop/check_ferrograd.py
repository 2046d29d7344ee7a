"""Checks that PyTorch (or numpy alone) reproduces a ferrograd model's logits from
the files `cargo run --release --example interop -- --out OUTDIR` writes.

    python examples/interop/check_ferrograd.py OUTDIR

`OUTDIR/model.npz` is ferrograd's `state_dict` of (Linear<784, 64>, ReLU,
Linear<64, 10>); `OUTDIR/logits.npz` (key `logits`) is what ferrograd computed on the
1 000 held-out digits. With torch importable it loads the npz into
`nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))` with
`load_state_dict(strict=True)`; without, it runs the same math in numpy
(`relu(x @ W0.T + b0) @ W2.T + b2`), so a machine with only numpy can check it.
Exits with status 1 if the logits differ by more than the tolerance or any
prediction differs.
"""

import sys
from pathlib import Path

import numpy as np

from digits import split_per_class

# float32 sums of 784 products, added in another order: a few ulps of logits of a
# magnitude of ten or so, far below this.
TOLERANCE = 1e-4


def pytorch_logits(state, images):
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy(), f"PyTorch {torch.__version__}"


def numpy_logits(state, images):
    expected = {"0.weight": (64, 784), "0.bias": (64,), "2.weight": (10, 64), "2.bias": (10,)}
    found = {k: v.shape for k, v in state.items()}
    if found != expected:
        raise SystemExit(f"error: the state_dict has {found}, expected {expected}")
    hidden = np.maximum(images @ state["0.weight"].T + state["0.bias"], 0)
    return hidden @ state["2.weight"].T + state["2.bias"], f"numpy {np.__version__} (torch is not importable)"


def main():
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} OUTDIR")
    out = Path(sys.argv[1])
    with np.load(out / "model.npz") as f:
        state = {k: f[k] for k in f.files}
    with np.load(out / "logits.npz") as f:
        theirs = f["logits"]
    _, _, images, labels = split_per_class(400)
    try:
        import torch  # noqa: F401

        ours, runner = pytorch_logits(state, images)
    except ImportError:
        ours, runner = numpy_logits(state, images)

    if ours.shape != theirs.shape:
        raise SystemExit(f"error: ferrograd's logits are {theirs.shape}, ours {ours.shape}")
    difference = float(np.abs(ours - theirs).max())
    same = int((ours.argmax(1) == theirs.argmax(1)).sum())
    accuracy = float((ours.argmax(1) == labels).mean())
    print(
        f"{runner}: ferrograd's model.npz loaded (every key and shape checked), held-out accuracy {100 * accuracy:.2f} %; "
        f"logits within {difference:.2e} of ferrograd's (tolerance {TOLERANCE:g}), "
        f"{same}/{len(labels)} predictions the same"
    )
    if not difference <= TOLERANCE or same != len(labels):
        raise SystemExit("error: PyTorch does not reproduce ferrograd's logits")


if __name__ == "__main__":
    main()
