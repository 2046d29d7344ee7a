"""Comparisons (bool results, no gradient) and `choose` (torch.where)."""

import torch

from spec import INF, NAN, Case, ints, mask, mask_values, normal, values

OPS = {
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
    "eq_scalar": lambda x, scalar: x == scalar,
    "ne_scalar": lambda x, scalar: x != scalar,
    "lt_scalar": lambda x, scalar: x < scalar,
    "le_scalar": lambda x, scalar: x <= scalar,
    "gt_scalar": lambda x, scalar: x > scalar,
    "ge_scalar": lambda x, scalar: x >= scalar,
    "choose": lambda mask, on_true, on_false: torch.where(mask, on_true, on_false),
}

# NaN compares unequal to everything, itself included; infinities compare normally.
EDGE_X = values([NAN, NAN, 1.0, INF, -INF, 0.0, -0.0, 2.0])
EDGE_Y = values([NAN, 1.0, NAN, INF, INF, -0.0, 0.0, 1.0])

CASES = []
for _op in ["eq", "ne", "lt", "le", "gt", "ge"]:
    CASES += [
        Case(_op, [ints(-2, 2, 3, 4), ints(-2, 2, 3, 4)]),  # many ties
        Case(_op, [EDGE_X, EDGE_Y], tag="edges"),
        Case(f"{_op}_scalar", [ints(-2, 2, 2, 3, 4)], scalar=1.0),
        Case(f"{_op}_scalar", [EDGE_X], tag="edges", scalar=0.0),
    ]

CASES += [
    Case("choose", [mask(2, 3, 4), normal(2, 3, 4), normal(2, 3, 4)]),
    Case("choose", [mask(3, 4), normal(4, 3).permuted(1, 0), normal(3, 4)], tag="view"),
    Case("lt", [ints(-2, 2, 4, 3).permuted(1, 0), ints(-2, 2, 3, 4)], tag="view"),
    # The branch not taken holds NaN and inf: neither reaches the result.
    Case("choose", [mask_values([True, False, True, False]), values([1.0, NAN, -INF, 4.0]),
                    values([INF, 2.0, NAN, -3.0])], tag="edges"),
]
