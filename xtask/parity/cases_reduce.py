"""Sums and means over axes: every axis combination up to rank 3, a few of rank 4."""

from itertools import combinations

from spec import Case, normal

OPS = {
    "sum": lambda x, axes: x.sum(dim=tuple(axes)),
    "mean": lambda x, axes: x.mean(dim=tuple(axes)),
}

SHAPES = {1: (5,), 2: (3, 4), 3: (2, 3, 4), 4: (2, 3, 2, 3)}
RANK4_AXES = [(0,), (3,), (1, 3), (0, 2, 3), (0, 1, 2, 3)]


def _axes_sets(rank):
    if rank == 4:
        return RANK4_AXES
    return [c for k in range(1, rank + 1) for c in combinations(range(rank), k)]


CASES = [
    Case(op, [normal(*SHAPES[rank])], tag=f"r{rank}_ax{''.join(map(str, axes))}", axes=list(axes))
    for op in OPS
    for rank in SHAPES
    for axes in _axes_sets(rank)
]

# Non-contiguous input: reducing a permuted view.
CASES += [
    Case("sum", [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view_ax1", axes=[1]),
    Case("sum", [normal(3, 4).permuted(1, 0)], tag="of_view_ax0", axes=[0]),
    Case("mean", [normal(2, 3, 4).permuted(1, 2, 0)], tag="of_view_ax02", axes=[0, 2]),
]
