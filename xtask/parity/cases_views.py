"""Views and shape ops: permute, broadcast (PyTorch's unsqueeze + expand), reshape.

The gradient of a view lands in the viewed tensor: summed over broadcast axes,
permuted back for permute.
"""

from spec import Case, normal


def _broadcast(x, axes, shape):
    for axis in sorted(axes):
        x = x.unsqueeze(axis)
    return x.expand(*shape)


OPS = {
    "permute": lambda x, axes: x.permute(*axes),
    "broadcast": _broadcast,
    "reshape": lambda x, shape: x.reshape(shape),
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
    Case("reshape", [normal(12)], tag="r1_to_r3", shape=[2, 3, 2]),
    Case("reshape", [normal(2, 3)], tag="to_r1", shape=[6]),
    Case("reshape", [normal(1, 1)], tag="to_r0", shape=[]),
    # Non-contiguous input: reshape copies it in logical order first.
    Case("reshape", [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view", shape=[4, 6]),
]
