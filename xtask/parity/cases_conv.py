"""2-d convolutions (`torch.nn.functional.conv2d`) across stride, padding (PyTorch's
"same" with odd and even kernels included), dilation and groups (depthwise included),
with and without bias, on odd and non-square sizes and a batch of one."""

import torch.nn.functional as F

from spec import Case, normal


def conv2d(x, w, b=None, **params):
    return F.conv2d(x, w, b, **params)


OPS = {"conv2d": conv2d}

CASES = [
    Case("conv2d", [normal(2, 3, 5, 6), normal(4, 3, 3, 2), normal(4)], tag="basic"),
    Case("conv2d", [normal(2, 3, 5, 6), normal(4, 3, 3, 2)], tag="no_bias"),
    Case("conv2d", [normal(2, 2, 7, 6), normal(3, 2, 3, 3), normal(3)], tag="stride2", stride=2),
    Case("conv2d", [normal(2, 2, 7, 6), normal(3, 2, 3, 3)], tag="stride2_1", stride=(2, 1)),
    Case("conv2d", [normal(2, 2, 5, 5), normal(3, 2, 3, 3), normal(3)], tag="pad1", padding=1),
    Case("conv2d", [normal(1, 2, 5, 7), normal(3, 2, 3, 2)], tag="pad1_2", padding=(1, 2)),
    Case("conv2d", [normal(2, 2, 5, 5), normal(3, 2, 3, 3), normal(3)], tag="valid", padding="valid"),
    Case("conv2d", [normal(2, 2, 5, 6), normal(3, 2, 3, 5), normal(3)], tag="same_odd", padding="same"),
    # An even kernel: PyTorch pads one more row below and one more column on the right.
    Case("conv2d", [normal(2, 2, 5, 6), normal(3, 2, 4, 2), normal(3)], tag="same_even", padding="same"),
    Case("conv2d", [normal(1, 2, 7, 6), normal(2, 2, 2, 3)], tag="same_dilated", padding="same", dilation=2),
    Case("conv2d", [normal(2, 2, 7, 7), normal(3, 2, 3, 3), normal(3)], tag="dilation2", dilation=2),
    Case("conv2d", [normal(2, 2, 7, 6), normal(3, 2, 2, 3)], tag="dilation2_1", dilation=(2, 1), padding=1),
    Case("conv2d", [normal(2, 4, 5, 5), normal(6, 2, 3, 3), normal(6)], tag="groups2", groups=2, padding=1),
    Case("conv2d", [normal(2, 3, 6, 5), normal(3, 1, 3, 3), normal(3)], tag="depthwise", groups=3, padding=1),
    Case("conv2d", [normal(1, 2, 5, 5), normal(4, 1, 3, 2)], tag="depthwise_x2", groups=2, stride=2),
    Case("conv2d", [normal(2, 3, 4, 5), normal(5, 3, 1, 1), normal(5)], tag="pointwise"),
    Case("conv2d", [normal(2, 4, 3, 3), normal(4, 2, 1, 1)], tag="pointwise_groups2", groups=2),
    Case("conv2d", [normal(1, 3, 9, 7), normal(5, 3, 4, 3), normal(5)], tag="batch1_odd"),
    Case(
        "conv2d",
        [normal(2, 4, 9, 8), normal(6, 2, 3, 2), normal(6)],
        tag="everything",
        stride=(2, 1),
        padding=(1, 2),
        dilation=(1, 2),
        groups=2,
    ),
    # A channels-last input: the op sees a permuted (non-contiguous) view.
    Case("conv2d", [normal(2, 5, 6, 3).permuted(0, 3, 1, 2), normal(4, 3, 3, 3), normal(4)], tag="input_view", padding=1),
]
