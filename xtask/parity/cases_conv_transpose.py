"""Transposed convolutions (`torch.nn.functional.conv_transpose2d`, `conv_transpose1d`)
across stride, padding, output padding (below the stride, and past it below the
dilation), dilation and groups (depthwise included), with and without bias, on odd and
non-square sizes, a batch of one and a permuted input; and 1-d convolutions
(`conv1d`), which ferrograd runs as the 2-d ops with a height of 1."""

import torch.nn.functional as F

from spec import Case, normal


def conv_transpose2d(x, w, b=None, **params):
    return F.conv_transpose2d(x, w, b, **params)


def conv_transpose1d(x, w, b=None, **params):
    return F.conv_transpose1d(x, w, b, **params)


def conv1d(x, w, b=None, **params):
    return F.conv1d(x, w, b, **params)


OPS = {"conv_transpose2d": conv_transpose2d, "conv_transpose1d": conv_transpose1d, "conv1d": conv1d}

CT2 = "conv_transpose2d"
CT1 = "conv_transpose1d"

CASES = [
    Case(CT2, [normal(2, 3, 4, 5), normal(3, 4, 3, 2), normal(4)], tag="basic"),
    Case(CT2, [normal(2, 3, 4, 5), normal(3, 4, 3, 3)], tag="no_bias"),
    Case(CT2, [normal(2, 2, 3, 4), normal(2, 3, 3, 3), normal(3)], tag="stride2", stride=2),
    Case(CT2, [normal(2, 2, 3, 4), normal(2, 3, 2, 3)], tag="stride2_1", stride=(2, 1)),
    Case(CT2, [normal(2, 2, 4, 5), normal(2, 3, 3, 3), normal(3)], tag="pad1", padding=1),
    Case(CT2, [normal(1, 2, 3, 5), normal(2, 2, 4, 4), normal(2)], tag="stride2_pad1_outpad1", stride=2, padding=1, output_padding=1),
    Case(CT2, [normal(2, 2, 3, 3), normal(2, 2, 3, 2), normal(2)], tag="outpad_per_axis", stride=(2, 3), padding=(1, 0), output_padding=(1, 2)),
    Case(CT2, [normal(2, 2, 4, 4), normal(2, 3, 3, 3), normal(3)], tag="dilation2", dilation=2, padding=1),
    # Output padding past the stride is allowed below the dilation: the last rows get only the bias.
    Case(CT2, [normal(1, 2, 3, 4), normal(2, 2, 2, 2), normal(2)], tag="outpad_below_dilation", dilation=3, output_padding=2),
    Case(CT2, [normal(2, 4, 3, 3), normal(4, 3, 3, 3), normal(6)], tag="groups2", groups=2, stride=2, padding=1),
    Case(CT2, [normal(2, 3, 4, 5), normal(3, 1, 3, 3), normal(3)], tag="depthwise", groups=3, stride=(1, 2)),
    Case(CT2, [normal(1, 2, 3, 3), normal(2, 2, 1, 1), normal(4)], tag="depthwise_x2", groups=2),
    Case(CT2, [normal(1, 3, 5, 7), normal(3, 5, 4, 3), normal(5)], tag="batch1_odd", stride=(3, 2), padding=(2, 1)),
    Case(
        CT2,
        [normal(2, 4, 5, 4), normal(4, 3, 3, 2), normal(6)],
        tag="everything",
        stride=(2, 1),
        padding=(1, 2),
        output_padding=(1, 0),
        dilation=(1, 3),
        groups=2,
    ),
    # A channels-last input: the op sees a permuted (non-contiguous) view.
    Case(CT2, [normal(2, 4, 5, 3).permuted(0, 3, 1, 2), normal(3, 2, 3, 3), normal(2)], tag="input_view", stride=2, padding=1, output_padding=1),
    Case(CT1, [normal(2, 3, 7), normal(3, 4, 3), normal(4)], tag="basic"),
    Case(CT1, [normal(1, 4, 5), normal(4, 2, 4)], tag="stride3_pad1_outpad2", stride=3, padding=1, output_padding=2),
    Case(CT1, [normal(2, 4, 6), normal(4, 1, 3), normal(4)], tag="depthwise_x2_dilation", groups=4, dilation=2, padding=2),
    Case(CT1, [normal(2, 6, 3).permuted(0, 2, 1), normal(3, 2, 3), normal(2)], tag="input_view", stride=2),
    Case("conv1d", [normal(2, 3, 9), normal(4, 3, 3), normal(4)], tag="basic"),
    Case("conv1d", [normal(2, 3, 9), normal(4, 3, 4)], tag="same_even", padding="same"),
    Case("conv1d", [normal(1, 4, 10), normal(6, 2, 3), normal(6)], tag="stride2_pad1_groups2", stride=2, padding=1, groups=2),
    Case("conv1d", [normal(2, 3, 11), normal(3, 1, 3), normal(3)], tag="depthwise_dilation2", groups=3, dilation=2),
    Case("conv1d", [normal(2, 8, 3).permuted(0, 2, 1), normal(5, 3, 2), normal(5)], tag="input_view", padding="valid"),
]
