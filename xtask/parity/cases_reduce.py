"""Reductions over axes: sum and mean over every axis combination up to rank 3 and a
few of rank 4; max, min, var, std and logsumexp over a selection; max and min along
one axis with their indices, ties and NaN included."""

from itertools import combinations

import torch

from spec import NAN, Case, ints, normal, values

OPS = {
    "sum": lambda x, axes: x.sum(dim=tuple(axes)),
    "mean": lambda x, axes: x.mean(dim=tuple(axes)),
    # Ties split the gradient equally among the extreme elements (amax / amin).
    "max": lambda x, axes: torch.amax(x, dim=tuple(axes)),
    "min": lambda x, axes: torch.amin(x, dim=tuple(axes)),
    # torch.max(x, dim): (values, indices), the first index among ties and the first NaN's;
    # the whole gradient of a value goes to its index.
    "max_with_indices": lambda x, axis: torch.max(x, dim=axis),
    "min_with_indices": lambda x, axis: torch.min(x, dim=axis),
    "var": lambda x, axes: torch.var(x, dim=tuple(axes)),  # unbiased (correction 1)
    "var_with_correction": lambda x, axes, correction: torch.var(x, dim=tuple(axes), correction=correction),
    "std": lambda x, axes: torch.std(x, dim=tuple(axes)),
    "std_with_correction": lambda x, axes, correction: torch.std(x, dim=tuple(axes), correction=correction),
    "logsumexp": lambda x, axes: torch.logsumexp(x, dim=tuple(axes)),
}

SHAPES = {1: (5,), 2: (3, 4), 3: (2, 3, 4), 4: (2, 3, 2, 3)}
RANK4_AXES = [(0,), (3,), (1, 3), (0, 2, 3), (0, 1, 2, 3)]


def _axes_sets(rank):
    if rank == 4:
        return RANK4_AXES
    return [c for k in range(1, rank + 1) for c in combinations(range(rank), k)]


CASES = [
    Case(op, [normal(*SHAPES[rank])], tag=f"r{rank}_ax{''.join(map(str, axes))}", axes=list(axes))
    for op in ["sum", "mean"]
    for rank in SHAPES
    for axes in _axes_sets(rank)
]

# Non-contiguous input: reducing a permuted view.
CASES += [
    Case("sum", [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view_ax1", axes=[1]),
    Case("sum", [normal(3, 4).permuted(1, 0)], tag="of_view_ax0", axes=[0]),
    Case("mean", [normal(2, 3, 4).permuted(1, 2, 0)], tag="of_view_ax02", axes=[0, 2]),
]

# The other reductions over a selection of ranks and axes.
SOME_AXES = [(1, (0,)), (2, (1,)), (2, (0, 1)), (3, (0, 2)), (4, (1, 3))]


def _tag(rank, axes):
    return f"r{rank}_ax{''.join(map(str, axes))}"


for _op in ["max", "min"]:
    CASES += [Case(_op, [normal(*SHAPES[rank])], tag=_tag(rank, axes), axes=list(axes)) for rank, axes in SOME_AXES]
    CASES += [
        Case(_op, [ints(-1, 1, 3, 4)], tag="ties_ax1", axes=[1]),  # several extremes per row
        Case(_op, [ints(-1, 1, 2, 3, 4)], tag="ties_ax02", axes=[0, 2]),
        Case(_op, [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view", axes=[1]),
    ]
for _op in ["var", "std", "logsumexp"]:
    CASES += [Case(_op, [normal(*SHAPES[rank])], tag=_tag(rank, axes), axes=list(axes)) for rank, axes in SOME_AXES]
    CASES += [Case(_op, [normal(3, 4).permuted(1, 0)], tag="of_view", axes=[1])]
CASES += [
    Case("var_with_correction", [normal(3, 4)], tag="pop", axes=[1], correction=0.0),
    Case("var_with_correction", [normal(2, 3, 4)], tag="c2", axes=[0, 2], correction=2.0),
    Case("std_with_correction", [normal(3, 4)], tag="pop", axes=[1], correction=0.0),
    Case("std_with_correction", [normal(2, 3, 4).permuted(1, 2, 0)], tag="c2_of_view", axes=[0, 2], correction=2.0),
    # Far-apart values: the naive formula overflows; the result stays finite.
    Case("logsumexp", [values([1e4, -1e4, 0.0, 50.0, 1000.0, 999.0, -1000.0, 3.0], shape=(2, 4))], tag="large",
         axes=[1]),
]

# Along one axis with the indices: integers in [-1, 1] tie everywhere, so these check
# which index is returned (the first) and that the gradient goes there alone.
TIES_ALONG = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2), (4, 1), (4, 3)]
WITH_NAN = values([1.0, NAN, 3.0, NAN, 2.0, 2.0, NAN, 0.0, 5.0, 5.0, 1.0, -1.0], shape=(3, 4))
for _op in ["max_with_indices", "min_with_indices"]:
    CASES += [
        Case(_op, [ints(-1, 1, *SHAPES[rank])], tag=f"ties_r{rank}_ax{axis}", axis=axis) for rank, axis in TIES_ALONG
    ]
    CASES += [
        Case(_op, [normal(2, 3, 4)], tag="r3_ax1", axis=1),  # no ties
        Case(_op, [ints(-1, 1, 2, 3, 4).permuted(2, 0, 1)], tag="ties_of_view", axis=1),
        Case(_op, [ints(-1, 1, 3, 4).permuted(1, 0)], tag="ties_of_transpose", axis=0),
        Case(_op, [ints(-2, 2, 3, 70)], tag="ties_long_rows", axis=1),
        Case(_op, [WITH_NAN], tag="nan_ax0", axis=0),
        Case(_op, [WITH_NAN], tag="nan_ax1", axis=1),
    ]
