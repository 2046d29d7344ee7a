"""The embedded MNIST digits, split as ferrograd's `Digits::split_per_class(400)` does.

Shared by `train_pytorch.py` and `check_ferrograd.py`; needs numpy only.
"""

import gzip
from pathlib import Path

import numpy as np

CSV = Path(__file__).resolve().parents[2] / "crates/ferrograd-data/data/mnist5k/mnist_5k.csv.gz"


def split_per_class(per_class=400):
    """(train_x, train_y, test_x, test_y): images as float32 (N, 784) in [0, 1], the
    pixels / 255 as ferrograd's `DigitsToTensors` scales them; labels as int64.

    The first `per_class` digits of each class, in file order, are the training set
    and the rest the test set, both kept in file order: the same 4 000 and 1 000
    images, in the same order, as `Digits::embedded()?.split_per_class(400)`.
    """
    with gzip.open(CSV, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :784], table[:, 784]
    seen = np.zeros(10, dtype=np.int64)
    first = np.zeros(len(labels), dtype=bool)
    for i, label in enumerate(labels):
        first[i] = seen[label] < per_class
        seen[label] += 1
    images = pixels.astype(np.float32) / np.float32(255.0)
    return images[first], labels[first], images[~first], labels[~first]
