"""Element-wise ops of two tensors of one shape."""

import torch

from spec import INF, NAN, Case, away_from_zero, ints, normal, values

OPS = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}

CASES = [
    Case("add", [normal(2, 3, 4), normal(2, 3, 4)]),
    Case("add", [normal(5), normal(5)], tag="rank1"),
    Case("sub", [normal(2, 3, 4), normal(2, 3, 4)]),
    Case("sub", [normal(3, 4), normal(3, 4)], tag="rank2"),
    Case("mul", [normal(2, 3, 4), normal(2, 3, 4)]),
    Case("mul", [values([0.0, INF, -2.0, NAN, 1e30]), values([INF, 0.0, -INF, 1.0, 1e30])], tag="edges"),
    Case("div", [normal(2, 3, 4), away_from_zero(2, 3, 4)]),
    # Division by zero: ±inf, and 0/0 = NaN; the gradients follow.
    Case("div", [values([1.0, -1.0, 0.0, 2.0, 3.0]), values([0.0, 0.0, 0.0, INF, -0.25])], tag="edges"),
    # Small integers: many ties, where the gradient is split 0.5 / 0.5.
    Case("maximum", [ints(-2, 2, 3, 4), ints(-2, 2, 3, 4)]),
    Case("maximum", [normal(2, 3, 4), normal(2, 3, 4)], tag="random"),
    Case("minimum", [ints(-2, 2, 3, 4), ints(-2, 2, 3, 4)]),
    Case("minimum", [normal(2, 3, 4), normal(2, 3, 4)], tag="random"),
    # Non-contiguous operands: one or both permuted views.
    Case("add", [normal(4, 3).permuted(1, 0), normal(3, 4)], tag="lhs_view"),
    Case("mul", [normal(2, 3, 4), normal(4, 2, 3).permuted(1, 2, 0)], tag="rhs_view"),
    Case("div", [normal(3, 4, 2).permuted(2, 0, 1), away_from_zero(4, 2, 3).permuted(1, 2, 0)], tag="views"),
    Case("maximum", [ints(-2, 2, 4, 3).permuted(1, 0), ints(-2, 2, 4, 3).permuted(1, 0)], tag="views"),
    # NaN: the result is NaN; PyTorch sends the whole gradient to both operands.
    Case("maximum", [values([NAN, 1.0, NAN]), values([1.0, NAN, NAN])], tag="nan"),
    Case("minimum", [values([NAN, 1.0, NAN]), values([1.0, NAN, NAN])], tag="nan"),
]
