"""PyTorch side of benches/src/bin/resnet18_layers.rs (issue #12): the convolutions of
ResNet-18's inference at batch 8 on 64×64 images, forward only, in f32.

    target/parity-venv/bin/python benches/torch/resnet18_layers.py --serve

Inputs are written by the formula the Rust side uses (`sin(0.1·i + phase) · scale`).
Each stdin line is a request, answered by one line of `name=value` pairs:

    check      per layer, the sum of the output's absolute values
    round N    on N threads: the median µs per forward of each layer
"""

import sys

import torch
import torch.nn.functional as F

from timing import per_iteration_us

# (name, input dims, weight dims, stride, padding), as resnet18_layers.rs lists them.
LAYERS = [
    ("conv1", (8, 3, 64, 64), (64, 3, 7, 7), 2, 3),
    ("layer1", (8, 64, 16, 16), (64, 64, 3, 3), 1, 1),
    ("layer2_0", (8, 64, 16, 16), (128, 64, 3, 3), 2, 1),
    ("layer2_down", (8, 64, 16, 16), (128, 64, 1, 1), 2, 0),
    ("layer2", (8, 128, 8, 8), (128, 128, 3, 3), 1, 1),
    ("layer3_0", (8, 128, 8, 8), (256, 128, 3, 3), 2, 1),
    ("layer3", (8, 256, 4, 4), (256, 256, 3, 3), 1, 1),
    ("layer4_0", (8, 256, 4, 4), (512, 256, 3, 3), 2, 1),
    ("layer4", (8, 512, 2, 2), (512, 512, 3, 3), 1, 1),
    ("layer4_down", (8, 256, 4, 4), (512, 256, 1, 1), 2, 0),
]


def by_formula(dims, phase, scale):
    count = 1
    for d in dims:
        count *= d
    i = torch.arange(count, dtype=torch.float64)
    return ((0.1 * i + phase).sin() * scale).float().reshape(dims)


def main():
    assert "--serve" in sys.argv
    cases = []
    for name, x, w, stride, padding in LAYERS:
        fan_in = w[1] * w[2] * w[3]
        cases.append((name, by_formula(x, 0.0, 1.0), by_formula(w, 1.0, fan_in**-0.5), stride, padding))
    print(f"torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        match line.split():
            case ["check"]:
                with torch.no_grad():
                    sums = [
                        f"{name}={float(F.conv2d(x, w, None, stride, padding).double().abs().sum()):.9g}"
                        for name, x, w, stride, padding in cases
                    ]
                print(" ".join(sums), flush=True)
            case ["round", threads]:
                torch.set_num_threads(int(threads))
                times = {}
                with torch.no_grad():
                    for name, x, w, stride, padding in cases:
                        times[name] = per_iteration_us(lambda: F.conv2d(x, w, None, stride, padding))
                print(" ".join(f"{k}={v:.4f}" for k, v in times.items()), flush=True)
            case _:
                sys.exit(f"resnet18_layers.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
