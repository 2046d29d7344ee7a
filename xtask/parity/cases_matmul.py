"""Matrix products in each form ferrograd supports, with transposed operands."""

import torch

from spec import Case, normal

OPS = {"matmul": torch.matmul}

CASES = [
    Case("matmul", [normal(3), normal(3, 4)], tag="vec_mat"),
    Case("matmul", [normal(2, 3), normal(3)], tag="mat_vec"),
    Case("matmul", [normal(2, 3), normal(3, 4)], tag="mat_mat"),
    Case("matmul", [normal(5, 7), normal(7, 6)], tag="mat_mat_odd"),
    Case("matmul", [normal(2, 3, 4), normal(4, 5)], tag="batch_mat"),
    Case("matmul", [normal(2, 3, 4), normal(2, 4, 5)], tag="batch_batch"),
    Case("matmul", [normal(2, 2, 3, 4), normal(2, 2, 4, 3)], tag="batch2"),
    # Transposed (non-contiguous) operands reach the GEMM as strides.
    Case("matmul", [normal(3, 2).permuted(1, 0), normal(3, 4)], tag="lhs_t"),
    Case("matmul", [normal(2, 3), normal(4, 3).permuted(1, 0)], tag="rhs_t"),
    Case("matmul", [normal(3, 2).permuted(1, 0), normal(4, 3).permuted(1, 0)], tag="both_t"),
    Case("matmul", [normal(2, 4, 3).permuted(0, 2, 1), normal(5, 2, 4).permuted(1, 2, 0)], tag="batch_t"),
]
