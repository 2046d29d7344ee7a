"""Pooling (`torch.nn.functional.max_pool2d`, `avg_pool2d`, `max_pool1d`, `avg_pool1d`,
`adaptive_avg_pool2d`, and global average and max pooling) across kernels, strides,
padding, dilation, ceil_mode (a case where it adds a window and one where PyTorch's
rule drops it), count_include_pad, odd sizes, a batch of one, unbatched and permuted
inputs. Max pooling's gradient goes to one pixel per window: random normal inputs
have no ties, the `ties` and `nan` cases check PyTorch's rule where there are."""

import torch.nn.functional as F

from spec import Case, ints, normal, values

NAN = float("nan")


def global_avg_pool2d(x):
    return F.adaptive_avg_pool2d(x, 1).reshape(x.shape[:-2])


def global_max_pool2d(x):
    return F.adaptive_max_pool2d(x, 1).reshape(x.shape[:-2])


OPS = {
    "max_pool2d": F.max_pool2d,
    "avg_pool2d": F.avg_pool2d,
    "max_pool1d": F.max_pool1d,
    "avg_pool1d": F.avg_pool1d,
    "adaptive_avg_pool2d": F.adaptive_avg_pool2d,
    "global_avg_pool2d": global_avg_pool2d,
    "global_max_pool2d": global_max_pool2d,
}

CASES = [
    # max_pool2d
    Case("max_pool2d", [normal(2, 3, 6, 6)], tag="k2", kernel_size=2),
    Case("max_pool2d", [normal(2, 2, 7, 7)], tag="k3_s2", kernel_size=3, stride=2),
    Case("max_pool2d", [normal(1, 2, 5, 6)], tag="k3_s1_pad1", kernel_size=3, stride=1, padding=1),
    Case("max_pool2d", [normal(2, 2, 7, 8)], tag="rect", kernel_size=(2, 3), stride=(1, 2)),
    Case("max_pool2d", [normal(2, 2, 7, 6)], tag="rect_pad", kernel_size=(3, 2), padding=(1, 0)),
    Case("max_pool2d", [normal(2, 2, 8, 9)], tag="dilation2", kernel_size=3, stride=1, dilation=2),
    Case(
        "max_pool2d",
        [normal(1, 2, 9, 8)],
        tag="dilation_rect_pad",
        kernel_size=(3, 2),
        stride=(2, 1),
        padding=1,
        dilation=(2, 3),
    ),
    # ceil_mode adds a window: ceil((7 - 2) / 2) + 1 = 4 rather than 3.
    Case("max_pool2d", [normal(1, 2, 7, 7)], tag="ceil_adds", kernel_size=2, ceil_mode=True),
    # ceil_mode would add a window starting at 6 ≥ 5 + 1 (past the left padding): dropped.
    Case("max_pool2d", [normal(1, 2, 5, 5)], tag="ceil_drops", kernel_size=2, stride=2, padding=1, ceil_mode=True),
    Case("max_pool2d", [normal(2, 1, 8, 10)], tag="ceil_k3_s3", kernel_size=3, stride=3, ceil_mode=True),
    Case(
        "max_pool2d",
        [normal(1, 1, 9, 9)],
        tag="ceil_dilation_pad",
        kernel_size=3,
        stride=2,
        padding=1,
        dilation=2,
        ceil_mode=True,
    ),
    Case("max_pool2d", [normal(1, 3, 9, 7)], tag="batch1_odd", kernel_size=3, stride=2),
    Case("max_pool2d", [normal(3, 6, 6)], tag="unbatched", kernel_size=2),
    # A channels-last input: the op sees a permuted (non-contiguous) view.
    Case("max_pool2d", [normal(2, 6, 6, 3).permuted(0, 3, 1, 2)], tag="input_view", kernel_size=2),
    Case("max_pool2d", [normal(2, 7, 5, 3).permuted(0, 3, 1, 2)], tag="input_view_pad", kernel_size=3, stride=2, padding=1),
    # Tied maxima: the gradient goes to the first in each window.
    Case("max_pool2d", [ints(0, 3, 2, 2, 6, 6)], tag="ties", kernel_size=2),
    Case("max_pool2d", [ints(0, 3, 1, 2, 7, 7)], tag="ties_overlap", kernel_size=3, stride=2, padding=1),
    # NaN is the maximum; of two NaNs, the last.
    Case(
        "max_pool2d",
        [values([1.0, NAN, 3.0, 2.0, 0.0, -1.0, NAN, 5.0, 4.0, NAN, 2.0, 1.0, NAN, 0.0, 1.0, 7.0], (1, 1, 4, 4))],
        tag="nan",
        kernel_size=2,
    ),
    # avg_pool2d
    Case("avg_pool2d", [normal(2, 3, 6, 6)], tag="k2", kernel_size=2),
    Case("avg_pool2d", [normal(2, 2, 7, 7)], tag="k3_s2_pad1", kernel_size=3, stride=2, padding=1),
    Case(
        "avg_pool2d",
        [normal(2, 2, 7, 7)],
        tag="k3_s2_pad1_exclude_pad",
        kernel_size=3,
        stride=2,
        padding=1,
        count_include_pad=False,
    ),
    Case("avg_pool2d", [normal(2, 2, 7, 6)], tag="rect", kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    Case("avg_pool2d", [normal(1, 2, 7, 7)], tag="ceil_adds", kernel_size=2, ceil_mode=True),
    Case("avg_pool2d", [normal(1, 2, 5, 5)], tag="ceil_drops", kernel_size=2, stride=2, padding=1, ceil_mode=True),
    # The last window (rows 5..8) overhangs the padding (..7): it counts 2 rows.
    Case("avg_pool2d", [normal(2, 2, 6, 6)], tag="ceil_pad", kernel_size=3, stride=2, padding=1, ceil_mode=True),
    Case(
        "avg_pool2d",
        [normal(2, 2, 6, 6)],
        tag="ceil_pad_exclude_pad",
        kernel_size=3,
        stride=2,
        padding=1,
        ceil_mode=True,
        count_include_pad=False,
    ),
    Case("avg_pool2d", [normal(1, 3, 9, 7)], tag="batch1_odd", kernel_size=3, stride=2),
    Case("avg_pool2d", [normal(3, 5, 6)], tag="unbatched", kernel_size=2, stride=1),
    Case("avg_pool2d", [normal(2, 7, 5, 3).permuted(0, 3, 1, 2)], tag="input_view", kernel_size=3, stride=2, padding=1),
    # 1-d
    Case("max_pool1d", [normal(2, 3, 9)], tag="k3_s2_pad1", kernel_size=3, stride=2, padding=1),
    Case("max_pool1d", [normal(2, 3, 8)], tag="k2", kernel_size=2),
    Case("max_pool1d", [normal(2, 2, 10)], tag="ceil", kernel_size=3, stride=2, ceil_mode=True),
    Case("max_pool1d", [normal(1, 2, 11)], tag="dilation2", kernel_size=3, dilation=2, padding=1, stride=1),
    Case("max_pool1d", [normal(3, 8)], tag="unbatched", kernel_size=2),
    Case("max_pool1d", [normal(2, 9, 3).permuted(0, 2, 1)], tag="input_view", kernel_size=3, stride=2),
    Case("avg_pool1d", [normal(2, 3, 9)], tag="k3_s2_pad1", kernel_size=3, stride=2, padding=1),
    Case(
        "avg_pool1d",
        [normal(2, 3, 9)],
        tag="exclude_pad",
        kernel_size=3,
        stride=2,
        padding=1,
        count_include_pad=False,
    ),
    Case("avg_pool1d", [normal(2, 2, 10)], tag="ceil", kernel_size=3, stride=2, ceil_mode=True),
    Case("avg_pool1d", [normal(3, 8)], tag="unbatched", kernel_size=2),
    # adaptive
    Case("adaptive_avg_pool2d", [normal(2, 3, 8, 8)], tag="divides", output_size=4),
    Case("adaptive_avg_pool2d", [normal(2, 2, 7, 5)], tag="does_not_divide", output_size=(3, 2)),
    Case("adaptive_avg_pool2d", [normal(2, 2, 5, 4)], tag="larger", output_size=(7, 6)),
    Case("adaptive_avg_pool2d", [normal(1, 3, 6, 5)], tag="one", output_size=1),
    Case("adaptive_avg_pool2d", [normal(3, 7, 6)], tag="unbatched", output_size=(4, 4)),
    Case("adaptive_avg_pool2d", [normal(2, 7, 5, 3).permuted(0, 3, 1, 2)], tag="input_view", output_size=(3, 2)),
    # global
    Case("global_avg_pool2d", [normal(2, 3, 5, 4)], tag="basic"),
    Case("global_avg_pool2d", [normal(3, 4, 4)], tag="unbatched"),
    Case("global_avg_pool2d", [normal(2, 5, 4, 3).permuted(0, 3, 1, 2)], tag="input_view"),
    Case("global_max_pool2d", [normal(2, 3, 5, 4)], tag="basic"),
    Case("global_max_pool2d", [normal(3, 4, 4)], tag="unbatched"),
    Case("global_max_pool2d", [normal(2, 5, 4, 3).permuted(0, 3, 1, 2)], tag="input_view"),
]
