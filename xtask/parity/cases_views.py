"""Views and shape ops: permute, broadcast (PyTorch's unsqueeze + expand), reshape,
slice (basic indexing `x[a:b, :, c:]`).

The gradient of a view lands in the viewed tensor: summed over broadcast axes,
permuted back for permute, in the sliced region (zero elsewhere) for slice.
"""

from spec import Case, normal


def _broadcast(x, axes, shape):
    for axis in sorted(axes):
        x = x.unsqueeze(axis)
    return x.expand(*shape)


def _slice(x, ranges):
    return x[tuple(slice(start, end) for start, end in ranges)]


OPS = {
    "permute": lambda x, axes: x.permute(*axes),
    "broadcast": _broadcast,
    "reshape": lambda x, shape: x.reshape(shape),
    "contiguous": lambda x: x.contiguous(),
    "flatten": lambda x: x.flatten(),
    "t": lambda x: x.t(),
    "unsqueeze": lambda x, axis: x.unsqueeze(axis),
    "squeeze": lambda x, axis: x.squeeze(axis),
    # `ranges`: one [start, end) per axis; ferrograd's `x.slice((start..end, ...))`.
    "slice": _slice,
}

CASES = [
    Case("permute", [normal(3, 4)], tag="r2", axes=[1, 0]),
    Case("permute", [normal(2, 3, 4)], tag="r3_201", axes=[2, 0, 1]),
    Case("permute", [normal(2, 3, 4)], tag="r3_102", axes=[1, 0, 2]),
    Case("permute", [normal(2, 3, 4, 5)], tag="r4_3120", axes=[3, 1, 2, 0]),
    # A permutation of a permuted view.
    Case("permute", [normal(2, 3, 4).permuted(1, 2, 0)], tag="of_view", axes=[2, 0, 1]),
    Case("broadcast", [normal()], tag="r0_to_r2", axes=[0, 1], shape=[2, 3]),
    Case("broadcast", [normal(3)], tag="r1_ax0", axes=[0], shape=[2, 3]),
    Case("broadcast", [normal(3)], tag="r1_ax1", axes=[1], shape=[3, 2]),
    Case("broadcast", [normal(3)], tag="r1_ax02", axes=[0, 2], shape=[2, 3, 4]),
    Case("broadcast", [normal(2, 3)], tag="r2_ax1", axes=[1], shape=[2, 4, 3]),
    Case("broadcast", [normal(2, 3)], tag="r2_ax2", axes=[2], shape=[2, 3, 4]),
    Case("broadcast", [normal(2, 3, 4)], tag="r3_ax0", axes=[0], shape=[2, 2, 3, 4]),
    # Broadcasting a non-contiguous view: strides 0 and permuted together.
    Case("broadcast", [normal(3, 2).permuted(1, 0)], tag="of_view", axes=[1], shape=[2, 4, 3]),
    Case("reshape", [normal(2, 3, 4)], tag="r3_to_r2", shape=[6, 4]),
    Case("contiguous", [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view"),
    Case("contiguous", [normal(3, 4)], tag="already"),
    Case("flatten", [normal(2, 3, 4).permuted(1, 2, 0)], tag="of_view"),
    Case("flatten", [normal(3)], tag="r1"),
    Case("t", [normal(3, 4)], tag="r2"),
    Case("t", [normal(4, 3).permuted(1, 0)], tag="of_view"),
    Case("unsqueeze", [normal(3, 4)], tag="first", axis=0),
    Case("unsqueeze", [normal(2, 3, 4).permuted(2, 0, 1)], tag="middle_of_view", axis=1),
    Case("squeeze", [normal(3, 1, 4)], tag="middle", axis=1),
    Case("squeeze", [normal(1, 4).permuted(1, 0)], tag="of_view", axis=1),
    Case("reshape", [normal(12)], tag="r1_to_r3", shape=[2, 3, 2]),
    Case("reshape", [normal(2, 3)], tag="to_r1", shape=[6]),
    Case("reshape", [normal(1, 1)], tag="to_r0", shape=[]),
    # Non-contiguous input: reshape copies it in logical order first.
    Case("reshape", [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view", shape=[4, 6]),
    # Slices: one range per axis ([0, size] keeps an axis whole, ferrograd's `..`).
    Case("slice", [normal(6)], tag="r1", ranges=[[1, 4]]),
    Case("slice", [normal(4, 5)], tag="r2_rows", ranges=[[1, 3], [0, 5]]),
    Case("slice", [normal(4, 5)], tag="r2_cols", ranges=[[0, 4], [2, 5]]),
    Case("slice", [normal(4, 5)], tag="r2_one", ranges=[[2, 3], [4, 5]]),
    Case("slice", [normal(4, 5)], tag="r2_whole", ranges=[[0, 4], [0, 5]]),
    Case("slice", [normal(4, 5)], tag="r2_empty", ranges=[[1, 1], [0, 5]]),
    Case("slice", [normal(3, 4, 5)], tag="r3", ranges=[[1, 3], [0, 4], [2, 5]]),
    Case("slice", [normal(2, 3, 4, 3)], tag="r4", ranges=[[0, 2], [1, 3], [1, 4], [0, 2]]),
    # Slices of permuted (non-contiguous) views: the offset and strides compose.
    Case("slice", [normal(5, 4).permuted(1, 0)], tag="of_view_r2", ranges=[[1, 4], [2, 4]]),
    Case("slice", [normal(4, 5, 3).permuted(2, 0, 1)], tag="of_view_r3", ranges=[[1, 3], [1, 4], [0, 5]]),
    Case("slice", [normal(2, 3, 4, 3).permuted(3, 1, 0, 2)], tag="of_view_r4", ranges=[[1, 3], [0, 2], [1, 2], [1, 4]]),
]
