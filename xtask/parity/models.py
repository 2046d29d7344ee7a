"""Whole-model fixtures: PyTorch modules whose `state_dict` ferrograd loads.

For each model below and each dtype, `generate.py` calls `write_fixtures`, which writes
into `OUT_DIR/models/`:

    <name>_<dtype>.state.npz   the module's state_dict before the forward pass, exactly
                               as a user exports it:
                               {k: v.numpy() for k, v in model.state_dict().items()}
    <name>_<dtype>.io.npz      input, output (eval mode), grad_output, grad_input (the
                               input's gradient of sum(output * grad_output); none for
                               int64 indices), grad.<key> for each parameter's
                               gradient, and for models named train_* (run in training
                               mode) after.<key>: each buffer after the forward pass

The Rust side (`crates/ferrograd-nn/tests/models.rs`) builds the matching ferrograd
architecture, loads the state file with `load`, and compares everything. Weights come
from PyTorch's own default initialisation under a seed from the model's name.
"""

import numpy as np
import torch
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), (5, 4)


def linear_no_bias():
    return nn.Linear(6, 2, bias=False), (3, 6)


def linear_sequence():
    # A batch of sequences: (batch, steps, features).
    return nn.Sequential(nn.Linear(4, 3)), (2, 5, 4)


def linear_one_sample():
    return nn.Sequential(nn.Linear(5, 2), nn.Tanh()), (5,)


def activations():
    # Each activation after a linear layer, in sequentials of two: keys like `3.0.weight`.
    pairs = [(3, 6, nn.GELU()), (6, 6, nn.Tanh()), (6, 6, nn.SiLU()), (6, 4, nn.LeakyReLU(0.01)),
             (4, 4, nn.Sigmoid()), (4, 4, nn.GELU(approximate="tanh")), (4, 3, nn.LogSoftmax(dim=-1))]
    return nn.Sequential(*[nn.Sequential(nn.Linear(i, o), act) for i, o, act in pairs]), (7, 3)


def nested_softmax():
    # Sequentials inside sequentials: keys like `1.0.weight`.
    return nn.Sequential(
        nn.Linear(3, 4),
        nn.Sequential(nn.Linear(4, 4), nn.ReLU()),
        nn.Linear(4, 5),
        nn.Softmax(dim=-1),
    ), (2, 3)


def layer_norm():
    return nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6)), (2, 5, 4)


def layer_norm_no_bias():
    return nn.Sequential(nn.Linear(5, 5), nn.LayerNorm(5, bias=False)), (3, 5)


def layer_norm_no_affine():
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4, elementwise_affine=False)), (3,)


def rms_norm():
    return nn.Sequential(nn.Linear(4, 6), nn.RMSNorm(6)), (2, 3, 4)


def rms_norm_eps():
    return nn.Sequential(nn.Linear(4, 6), nn.RMSNorm(6, eps=1e-3)), (5, 4)


def embedding():
    # Indices (int64) in, with the padding index among them.
    return nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Linear(4, 3)), ("indices", (2, 5), 10)


def embedding_plain():
    return nn.Embedding(7, 3), ("indices", (6,), 7)


def batch_norm():
    # Inference: running statistics (randomised below).
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)), (5, 4)


def batch_norm_sequence():
    return nn.BatchNorm1d(3), (2, 3, 5)


def train_batch_norm():
    # Training mode: batch statistics; the fixture also holds the buffers after the step.
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)), (8, 4)


def train_batch_norm_cumulative():
    # momentum=None: the running statistics are a cumulative average.
    return nn.BatchNorm1d(3, momentum=None), (4, 3, 5)


def train_batch_norm_no_affine():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False, momentum=0.3)), (6, 3)


def conv_net():
    # (2, 2, 9, 8) -> 3x3 -> (7, 6) -> 3x3 stride 2 padding 1 -> (4, 3): 6 * 4 * 3 = 72 features.
    return nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(72, 5)
    ), (2, 2, 9, 8)


def conv_grouped():
    return nn.Conv2d(4, 8, (3, 2), padding="same", dilation=2, groups=2), (2, 4, 7, 6)


def conv_depthwise():
    return nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False), (1, 3, 5, 6)


def conv_one_image():
    return nn.Conv2d(2, 3, (2, 3), stride=(2, 1)), (2, 7, 5)


def batch_norm2d():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)), (2, 2, 6, 5)


def train_batch_norm2d():
    # No bias before a batch norm (as in ResNet): the norm removes it, and its gradient
    # would be zero up to rounding, which no tolerance compares.
    return nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3), nn.ReLU()), (3, 2, 6, 5)


def train_batch_norm2d_no_affine():
    return nn.BatchNorm2d(3, affine=False, momentum=0.2), (2, 3, 4, 3)


def group_norm():
    return nn.Sequential(nn.Conv2d(2, 6, 1), nn.GroupNorm(3, 6)), (2, 2, 5, 4)


def group_norm_sequence():
    return nn.GroupNorm(2, 4, eps=1e-3), (3, 4, 5)


def group_norm_no_affine():
    return nn.GroupNorm(1, 3, affine=False), (2, 3)


def conv1d_net():
    return nn.Sequential(nn.Conv1d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv1d(4, 2, 2, dilation=2)), (2, 3, 9)


def conv_transpose():
    return nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (2, 4, 4, 5)


def conv_transpose_grouped():
    return nn.ConvTranspose2d(4, 6, (2, 3), groups=2, dilation=(1, 2), bias=False), (1, 4, 3, 3)


def upsample_nearest():
    return nn.Sequential(nn.Conv2d(2, 3, 1), nn.Upsample(scale_factor=2)), (2, 2, 3, 4)


def upsample_bilinear():
    return nn.Sequential(nn.Conv2d(2, 2, 1), nn.Upsample(size=(5, 7), mode="bilinear")), (1, 2, 3, 4)


def lenet():
    # The LeNet-style network at 28x28: 16 * 5 * 5 = 400 features.
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    ), (2, 1, 28, 28)


def pools():
    return nn.Sequential(
        nn.Conv2d(2, 3, 1), nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(2, stride=1, padding=1,
                                                                               count_include_pad=False),
        nn.AvgPool2d((2, 1), ceil_mode=True), nn.AdaptiveAvgPool2d((2, 3)),
    ), (2, 2, 9, 8)


def max_pool_ceil_dilated():
    return nn.MaxPool2d(2, stride=2, dilation=2, ceil_mode=True), (1, 2, 7, 8)


def global_pools():
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)), (2, 2, 6, 5)


def global_avg_pool():
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), (2, 2, 6, 5)


def global_max_pool():
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten()), (2, 2, 6, 5)


MODELS = [mlp, linear_no_bias, linear_sequence, linear_one_sample, activations, nested_softmax,
          layer_norm, layer_norm_no_bias, layer_norm_no_affine, rms_norm, rms_norm_eps,
          embedding, embedding_plain, batch_norm, batch_norm_sequence, train_batch_norm,
          train_batch_norm_cumulative, train_batch_norm_no_affine, conv_net, conv_grouped, conv_depthwise,
          conv_one_image, batch_norm2d, train_batch_norm2d, train_batch_norm2d_no_affine, group_norm,
          group_norm_sequence, group_norm_no_affine, conv1d_net, conv_transpose, conv_transpose_grouped,
          upsample_nearest, upsample_bilinear, lenet, pools, max_pool_ceil_dilated, global_pools, global_avg_pool,
          global_max_pool]


def randomize_norms(model, rng, np_dtype):
    """Norm layers start at ones and zeros, which would hide a swapped weight and bias."""
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.RMSNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            for parameter in module.parameters():
                values = rng.standard_normal(tuple(parameter.shape)).astype(np_dtype)
                parameter.data.copy_(torch.from_numpy(values))
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            shape = tuple(module.running_mean.shape)
            module.running_mean.copy_(torch.from_numpy(rng.standard_normal(shape).astype(np_dtype)))
            module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, shape).astype(np_dtype)))
            module.num_batches_tracked.fill_(3)


def write_fixtures(out_dir, write_npz, seed_of, dtypes):
    import os

    os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)
    count = 0
    for make in MODELS:
        name = make.__name__
        for dtype, (np_dtype, torch_dtype) in dtypes.items():
            torch.manual_seed(seed_of(name))
            model, input_shape = make()
            model = model.to(torch_dtype)
            model.train(name.startswith("train_"))
            rng = np.random.default_rng(seed_of(name + dtype))
            randomize_norms(model, rng, np_dtype)
            if input_shape[0] == "indices":
                _, shape, count = input_shape
                x = torch.tensor(rng.integers(0, count, size=shape), dtype=torch.int64)
                x.view(-1)[0] = 0  # the padding index, where there is one
            else:
                x = torch.tensor(rng.standard_normal(input_shape).astype(np_dtype), requires_grad=True)
            state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
            out = model(x)
            grad_output = torch.tensor(rng.standard_normal(tuple(out.shape)).astype(np_dtype))
            (out * grad_output).sum().backward()
            io_arrays = {
                "input": x.detach().numpy(),
                "output": out.detach().numpy(),
                "grad_output": grad_output.numpy(),
            }
            if x.grad is not None:
                io_arrays["grad_input"] = x.grad.numpy()
            for key, parameter in model.named_parameters():
                io_arrays[f"grad.{key}"] = parameter.grad.numpy()
            if name.startswith("train_"):
                for key, buffer in model.named_buffers():
                    io_arrays[f"after.{key}"] = buffer.numpy()
            base = os.path.join(out_dir, "models", f"{name}_{dtype}")
            write_npz(base + ".state.npz", state)
            write_npz(base + ".io.npz", io_arrays)
            count += 2
    return count
