"""ResNet-18 fixtures: torchvision's architecture, whose `state_dict` ferrograd loads.

`write_fixtures` (called by `generate.py`) writes into `OUT_DIR/resnet/`:

    resnet18_w8_f32.state.npz   the state_dict of a ResNet-18 of base width 8 (stages of
                                8, 16, 32, 64 channels; torchvision's is 64) and 10
                                classes, exactly as a user exports it, after running
                                statistics were drawn (so that eval-mode batch norms
                                are not the identity)
    resnet18_w8_f32.io.npz      input (2, 3, 64, 64); in eval mode: output, grad_output,
                                grad_input and grad.<key> for every parameter; in
                                training mode (batch statistics): train.output,
                                train.grad_input, train.grad.<key> for the stem and the
                                classifier, after.<key> for the stem's buffers

Every result is computed in float64 from the float32 values (weights, input and upstream
gradient rounded to f32 first), so the Rust f32 model is compared with the exact result
of its own inputs, not with PyTorch's f32 rounding; the results are then stored as f32.

The narrow width keeps the committed files small (0.7 MB of weights instead of 47 MB);
every layer, key and code path is the full network's. `python models_resnet.py --full DIR`
writes the same files for torchvision's full width (64, 1000 classes) into DIR, for
`FERROGRAD_RESNET18_FULL=DIR cargo test -p ferrograd-examples --test resnet18`.

The module mirrors torchvision.models.resnet (BasicBlock, [2, 2, 2, 2]) and its
initialisation: kaiming_normal_(fan_out, relu) for convolutions, batch norms at
weight 1 and bias 0 (redrawn here so that a swapped weight and bias shows), Linear's
default.
"""

import os
import sys

import numpy as np
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, width=64, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = [width, 2 * width, 4 * width, 8 * width]
        inputs = width
        for index, (outputs, stride) in enumerate(zip(widths, [1, 2, 2, 2])):
            setattr(self, f"layer{index + 1}", nn.Sequential(BasicBlock(inputs, outputs, stride),
                                                            BasicBlock(outputs, outputs, 1)))
            inputs = outputs
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize_batch_norms(model, rng):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            shape = tuple(module.weight.shape)
            module.weight.data.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, shape).astype(np.float32)))
            module.bias.data.copy_(torch.from_numpy(rng.normal(0.0, 0.1, shape).astype(np.float32)))
            module.running_mean.copy_(torch.from_numpy(rng.normal(0.0, 0.1, shape).astype(np.float32)))
            module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, shape).astype(np.float32)))
            module.num_batches_tracked.fill_(10)


def fixture(width, num_classes, seed):
    """The state and io arrays of one network (f32 values, f64 results)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ResNet18(width, num_classes)
    randomize_batch_norms(model, rng)
    state = {k: v.detach().numpy().astype(np.float32) if v.is_floating_point() else v.detach().numpy().copy()
             for k, v in model.state_dict().items()}
    x32 = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    model = model.double()
    io_arrays = {"input": x32}

    # Inference: running statistics.
    model.eval()
    x = torch.tensor(x32.astype(np.float64), requires_grad=True)
    out = model(x)
    grad_output = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    (out * torch.from_numpy(grad_output.astype(np.float64))).sum().backward()
    io_arrays["output"] = out.detach().numpy()
    io_arrays["grad_output"] = grad_output
    io_arrays["grad_input"] = x.grad.numpy()
    for key, parameter in model.named_parameters():
        io_arrays[f"grad.{key}"] = parameter.grad.numpy()
        parameter.grad = None

    # Training: batch statistics, running statistics updated.
    model.train()
    x = torch.tensor(x32.astype(np.float64), requires_grad=True)
    out = model(x)
    (out * torch.from_numpy(grad_output.astype(np.float64))).sum().backward()
    io_arrays["train.output"] = out.detach().numpy()
    io_arrays["train.grad_input"] = x.grad.numpy()
    for key in ["conv1.weight", "bn1.weight", "layer4.1.conv2.weight", "fc.weight", "fc.bias"]:
        io_arrays[f"train.grad.{key}"] = dict(model.named_parameters())[key].grad.numpy()
    for key in ["bn1.running_mean", "bn1.running_var"]:
        io_arrays[f"after.{key}"] = dict(model.named_buffers())[key].numpy()
    # Stored as f32: the comparison's tolerance is far above f32's rounding.
    return state, {k: v.astype(np.float32) for k, v in io_arrays.items()}


def write(directory, name, width, num_classes, seed, write_npz):
    os.makedirs(directory, exist_ok=True)
    state, io_arrays = fixture(width, num_classes, seed)
    write_npz(os.path.join(directory, f"{name}.state.npz"), state)
    write_npz(os.path.join(directory, f"{name}.io.npz"), io_arrays)


def write_fixtures(out_dir, write_npz, seed_of, dtypes):
    del dtypes  # f32 weights and inputs, f64 results: see the module's docstring
    write(os.path.join(out_dir, "resnet"), "resnet18_w8_f32", 8, 10, seed_of("resnet18_w8"), write_npz)
    return 2


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--full":
        raise SystemExit("usage: python models_resnet.py --full DIR")
    from generate import seed_of, write_npz

    write(sys.argv[2], "resnet18_w64_f32", 64, 1000, seed_of("resnet18_w64"), write_npz)
