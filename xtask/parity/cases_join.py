"""Joining tensors: concat_along an existing axis (torch.cat) and stack along a new
leading one (torch.stack(dim=0)).

The output is a new contiguous tensor; each input's gradient is its region of the
upstream gradient.
"""

import torch

from spec import Case, normal

OPS = {
    # ferrograd's `a.concat_along(Axis::<axis>, b)`.
    "concat_along": lambda a, b, axis: torch.cat([a, b], dim=axis),
    # `form`: ferrograd's `stack([a, b, ...])` ("array", a const new axis) or
    # `vec![a, b, ...].stack()` ("vec", a run-time one); one op in PyTorch.
    "stack": lambda *xs, form: torch.stack(xs, dim=0),
}

CASES = [
    Case("concat_along", [normal(3), normal(4)], tag="r1", axis=0),
    Case("concat_along", [normal(2, 3), normal(4, 3)], tag="r2_ax0", axis=0),
    Case("concat_along", [normal(3, 2), normal(3, 4)], tag="r2_ax1", axis=1),
    Case("concat_along", [normal(1, 3, 4), normal(2, 3, 4)], tag="r3_ax0", axis=0),
    Case("concat_along", [normal(2, 1, 4), normal(2, 3, 4)], tag="r3_ax1", axis=1),
    Case("concat_along", [normal(2, 3, 2), normal(2, 3, 3)], tag="r3_ax2", axis=2),
    Case("concat_along", [normal(2, 2, 1, 3), normal(2, 2, 3, 3)], tag="r4_ax2", axis=2),
    Case("concat_along", [normal(2, 1, 2, 3), normal(2, 1, 2, 2)], tag="r4_ax3", axis=3),
    # An operand with nothing along the joined axis.
    Case("concat_along", [normal(0, 3), normal(2, 3)], tag="empty_lhs", axis=0),
    # Permuted (non-contiguous) operands along the first, middle and last axis.
    Case("concat_along", [normal(3, 2).permuted(1, 0), normal(4, 3)], tag="lhs_view_ax0", axis=0),
    Case("concat_along", [normal(2, 3, 4), normal(4, 2, 3).permuted(1, 2, 0)], tag="rhs_view_ax1", axis=1),
    Case(
        "concat_along",
        [normal(4, 2, 3).permuted(1, 2, 0), normal(2, 2, 3).permuted(1, 2, 0)],
        tag="both_view_ax2",
        axis=2,
    ),
    Case("stack", [normal(), normal(), normal()], tag="r0_vec", form="vec"),
    Case("stack", [normal(4), normal(4)], tag="r1_array", form="array"),
    Case("stack", [normal(2, 3)], tag="r2_one_vec", form="vec"),
    Case("stack", [normal(2, 3), normal(2, 3), normal(2, 3)], tag="r2_array", form="array"),
    Case("stack", [normal(2, 3), normal(2, 3), normal(2, 3)], tag="r2_vec", form="vec"),
    Case("stack", [normal(2, 3, 2), normal(2, 3, 2)], tag="r3_vec", form="vec"),
    # Permuted (non-contiguous) inputs among contiguous ones.
    Case(
        "stack",
        [normal(3, 2).permuted(1, 0), normal(2, 3), normal(3, 2).permuted(1, 0)],
        tag="view_array",
        form="array",
    ),
    Case("stack", [normal(3, 4, 2).permuted(2, 0, 1), normal(2, 3, 4)], tag="view_r3_vec", form="vec"),
]
