"""Indexing: select, gather, index_select and scatter_add (differentiable in their
float inputs; the indices are int64 inputs, `usize` tensors in ferrograd, without a
gradient), one_hot and arange (forward only), argmax and argmin (forward only, the
first index among ties).

Repeated indices make the gradients of gather, index_select and scatter_add's source
add up (and scatter_add's forward add up).
"""

import torch
import torch.nn.functional as F

from spec import INF, NAN, Case, index_values, indices, ints, normal, values


def _select(x, idx, axis):
    """ferrograd's `x.select::<axis>(&idx)`, whose indices have one of three shapes."""
    if idx.dim() == 0:  # one index for everything: x.select(axis, i)
        return x.select(axis, int(idx))
    if idx.dim() == x.dim() - 1:  # one index per element of the result
        return torch.gather(x, axis, idx.unsqueeze(axis)).squeeze(axis)
    # One index per position of the axes before `axis`, shared by the trailing ones.
    assert idx.shape == x.shape[:axis], (idx.shape, x.shape, axis)
    trailing = x.shape[axis + 1 :]
    idx = idx.reshape(*idx.shape, 1, *(1 for _ in trailing)).expand(*idx.shape, 1, *trailing)
    return torch.gather(x, axis, idx).squeeze(axis)


def _arg_extremum(torch_fn):
    """torch.argmax / argmin over `axes`: over several, the index into those axes
    flattened row-major (as PyTorch's over a flattened tensor), ferrograd's convention."""

    def run(x, axes):
        kept = [a for a in range(x.dim()) if a not in axes]
        moved = x.permute(*kept, *axes)
        flat = moved.reshape(*(x.shape[a] for a in kept), -1)
        return torch_fn(flat, dim=-1)

    return run


OPS = {
    "select": _select,
    "gather": lambda x, idx, axis: torch.gather(x, axis, idx),
    "index_select": lambda x, idx, axis: torch.index_select(x, axis, idx),
    "scatter_add": lambda x, idx, src, axis: x.scatter_add(axis, idx, src),
    # Compared as floats of the case's dtype (ferrograd's `one_hot_like::<_, E>`).
    "one_hot": lambda idx, classes: F.one_hot(idx, classes).to(torch.get_default_dtype()),
    "argmax": _arg_extremum(torch.argmax),
    "argmin": _arg_extremum(torch.argmin),
    "arange": lambda n: torch.arange(n),  # int64: ferrograd's `usize` arange
    "arange_float": lambda n: torch.arange(n, dtype=torch.get_default_dtype()),
}

CASES = [
    # select, a scalar index: x.select(axis, i).
    Case("select", [normal(5), index_values(3, shape=())], tag="r1_scalar", axis=0),
    Case("select", [normal(4, 5), index_values(2, shape=())], tag="r2_ax0_scalar", axis=0),
    Case("select", [normal(4, 5), index_values(4, shape=())], tag="r2_ax1_scalar", axis=1),
    Case("select", [normal(2, 3, 4), index_values(1, shape=())], tag="r3_ax1_scalar", axis=1),
    Case("select", [normal(2, 3, 4), index_values(3, shape=())], tag="r3_ax2_scalar", axis=2),
    # select, one index per leading position (the label of each row).
    Case("select", [normal(4, 5), indices(5, 4)], tag="r2_ax1_rows", axis=1),
    Case("select", [normal(2, 3, 4), indices(3, 2)], tag="r3_ax1_leading", axis=1),
    Case("select", [normal(2, 3, 4, 2), indices(4, 2, 3)], tag="r4_ax2_leading", axis=2),
    # select, one index per element of the result.
    Case("select", [normal(4, 5), indices(4, 5)], tag="r2_ax0_full", axis=0),
    Case("select", [normal(2, 3, 4), indices(2, 3, 4)], tag="r3_ax0_full", axis=0),
    Case("select", [normal(2, 3, 4), indices(3, 2, 4)], tag="r3_ax1_full", axis=1),
    Case("select", [normal(2, 3, 4, 2), indices(3, 2, 4, 2)], tag="r4_ax1_full", axis=1),
    # select from permuted views, with permuted indices.
    Case("select", [normal(5, 4).permuted(1, 0), indices(5, 4)], tag="view_rows", axis=1),
    Case("select", [normal(4, 2, 3).permuted(1, 2, 0), indices(3, 4, 2).permuted(1, 0)], tag="view_full", axis=1),
    Case("select", [normal(4, 2, 3).permuted(1, 2, 0), index_values(2, shape=())], tag="view_scalar", axis=1),
    # gather: out[.., j, ..] = x[.., idx[.., j, ..], ..]; repeats add up in the gradient.
    Case("gather", [normal(5), index_values([4, 0, 4, 2, 4, 1, 0])], tag="r1", axis=0),
    Case("gather", [normal(3, 4), indices(3, 5, 4)], tag="r2_ax0", axis=0),
    Case("gather", [normal(3, 4), indices(4, 3, 6)], tag="r2_ax1", axis=1),
    Case("gather", [normal(3, 4), indices(4, 3, 2)], tag="r2_ax1_fewer", axis=1),
    Case("gather", [normal(2, 3, 4), indices(2, 3, 3, 4)], tag="r3_ax0", axis=0),
    Case("gather", [normal(2, 3, 4), indices(3, 2, 5, 4)], tag="r3_ax1", axis=1),
    Case("gather", [normal(2, 3, 4), indices(4, 2, 3, 4)], tag="r3_ax2", axis=2),
    Case("gather", [normal(2, 3, 2, 3), indices(3, 2, 3, 2, 4)], tag="r4_ax3", axis=3),
    Case("gather", [normal(2, 3), index_values([[1, 1, 1, 1], [0, 0, 2, 2]])], tag="repeats", axis=1),
    Case("gather", [normal(4, 3).permuted(1, 0), indices(4, 3, 5)], tag="view_x", axis=1),
    Case("gather", [normal(2, 3), indices(3, 5, 2).permuted(1, 0)], tag="view_idx", axis=1),
    Case(
        "gather",
        [normal(4, 2, 3).permuted(1, 2, 0), indices(3, 5, 2, 4).permuted(1, 0, 2)],
        tag="view_both",
        axis=1,
    ),
    # index_select: whole slices along the axis, in the indices' order.
    Case("index_select", [normal(5), index_values([4, 0, 4, 2, 4])], tag="r1", axis=0),
    Case("index_select", [normal(4, 3), indices(4, 6)], tag="r2_ax0", axis=0),
    Case("index_select", [normal(3, 4), indices(4, 5)], tag="r2_ax1", axis=1),
    Case("index_select", [normal(2, 4, 3), index_values([3, 3, 0])], tag="r3_ax1", axis=1),
    Case("index_select", [normal(2, 3, 4), index_values([1, 3, 1, 1])], tag="r3_ax2", axis=2),
    Case("index_select", [normal(2, 2, 3, 3), index_values([2, 0])], tag="r4_ax3", axis=3),
    Case("index_select", [normal(4, 3), index_values([], shape=(0,))], tag="empty", axis=0),
    Case("index_select", [normal(3, 4).permuted(1, 0), indices(4, 5)], tag="view", axis=0),
    Case("index_select", [normal(3, 2, 4).permuted(2, 0, 1), index_values([1, 0, 1])], tag="view_ax2", axis=2),
    # scatter_add: x with src[p] added at p with axis `axis` replaced by idx[p].
    Case("scatter_add", [normal(4), index_values([0, 2, 0, 0, 3, 2]), normal(6)], tag="r1", axis=0),
    Case("scatter_add", [normal(3, 4), indices(3, 5, 4), normal(5, 4)], tag="r2_ax0", axis=0),
    Case("scatter_add", [normal(3, 4), indices(4, 3, 6), normal(3, 6)], tag="r2_ax1", axis=1),
    Case("scatter_add", [normal(3, 4), indices(4, 3, 2), normal(3, 2)], tag="r2_ax1_fewer", axis=1),
    Case("scatter_add", [normal(2, 3, 4), indices(3, 2, 5, 4), normal(2, 5, 4)], tag="r3_ax1", axis=1),
    Case("scatter_add", [normal(2, 3, 4), indices(4, 2, 3, 6), normal(2, 3, 6)], tag="r3_ax2", axis=2),
    Case(
        "scatter_add",
        [normal(2, 3), index_values([[1, 1, 1, 1], [0, 0, 2, 2]]), normal(2, 4)],
        tag="repeats",
        axis=1,
    ),
    Case(
        "scatter_add",
        [normal(4, 3).permuted(1, 0), indices(4, 5, 3).permuted(1, 0), normal(5, 3).permuted(1, 0)],
        tag="view_all",
        axis=1,
    ),
    Case(
        "scatter_add",
        [normal(2, 3, 4), indices(2, 2, 3, 4), normal(3, 4, 2).permuted(2, 0, 1)],
        tag="view_src",
        axis=0,
    ),
    # one_hot: a new last axis of `classes`.
    Case("one_hot", [index_values(2, shape=())], tag="r0", classes=4),
    Case("one_hot", [indices(5, 6)], tag="r1", classes=5),
    Case("one_hot", [indices(3, 2, 4)], tag="r2_more_classes", classes=6),
    Case("one_hot", [indices(4, 2, 2, 3)], tag="r3", classes=4),
    Case("one_hot", [indices(3, 4, 2).permuted(1, 0)], tag="view", classes=3),
    # arange: [0, n).
    Case("arange", [], tag="n5", n=5),
    Case("arange", [], tag="n0", n=0),
    Case("arange_float", [], tag="n7", n=7),
]

# argmax / argmin: the first index among ties; NaN counts as the extreme (the first NaN).
ARG_NAN = values([1.0, NAN, 3.0, NAN, 0.0, 0.0, 2.0, 2.0, -INF, INF, INF, 5.0], shape=(3, 4))
for _op in ["argmax", "argmin"]:
    CASES += [
        Case(_op, [normal(6)], tag="r1", axes=[0]),
        Case(_op, [normal(3, 4)], tag="r2_ax0", axes=[0]),
        Case(_op, [normal(3, 4)], tag="r2_ax1", axes=[1]),
        Case(_op, [normal(2, 3, 4)], tag="r3_ax1", axes=[1]),
        Case(_op, [normal(2, 3, 4)], tag="r3_ax02", axes=[0, 2]),
        Case(_op, [normal(2, 3, 4)], tag="r3_all", axes=[0, 1, 2]),
        Case(_op, [normal(2, 3, 2, 3)], tag="r4_ax13", axes=[1, 3]),
        Case(_op, [ints(-1, 1, 4, 5)], tag="ties_ax1", axes=[1]),
        Case(_op, [ints(-1, 1, 4, 5)], tag="ties_ax0", axes=[0]),
        Case(_op, [ints(0, 1, 2, 3, 4)], tag="ties_ax02", axes=[0, 2]),
        Case(_op, [ARG_NAN], tag="nan_inf", axes=[1]),
        Case(_op, [normal(2, 3, 4).permuted(2, 0, 1)], tag="view", axes=[1]),
        Case(_op, [ints(-1, 1, 3, 4, 2).permuted(1, 2, 0)], tag="view_ties_ax01", axes=[0, 1]),
    ]
