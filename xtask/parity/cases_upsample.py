"""2-d upsampling (`torch.nn.functional.interpolate` of 4-d inputs) in modes "nearest"
and "bilinear" (align_corners true and false), by integer and fractional scale
factors and by explicit sizes (up, down and mixed), a batch of one and a permuted
input."""

import torch.nn.functional as F

from spec import Case, normal


def upsample2d(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return F.interpolate(x, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners)


OPS = {"upsample2d": upsample2d}

U = "upsample2d"
BI = "bilinear"

CASES = [
    Case(U, [normal(2, 3, 4, 5)], tag="nearest_x2", scale_factor=2.0),
    Case(U, [normal(2, 3, 4, 5)], tag="nearest_x3_2", scale_factor=[3.0, 2.0]),
    Case(U, [normal(1, 2, 5, 7)], tag="nearest_x1_5", scale_factor=1.5),
    Case(U, [normal(2, 2, 5, 4)], tag="nearest_size", size=[7, 11]),
    Case(U, [normal(2, 2, 9, 7)], tag="nearest_down", size=[4, 3]),
    Case(U, [normal(2, 2, 4, 5)], tag="bilinear_x2", scale_factor=2.0, mode=BI, align_corners=False),
    Case(U, [normal(1, 3, 5, 4)], tag="bilinear_x1_7", scale_factor=[1.7, 2.5], mode=BI, align_corners=False),
    Case(U, [normal(2, 2, 4, 5)], tag="bilinear_size", size=[7, 9], mode=BI, align_corners=False),
    Case(U, [normal(2, 2, 8, 9)], tag="bilinear_down", size=[3, 5], mode=BI, align_corners=False),
    Case(U, [normal(2, 2, 4, 5)], tag="bilinear_aligned_x2", scale_factor=2.0, mode=BI, align_corners=True),
    Case(U, [normal(1, 2, 5, 3)], tag="bilinear_aligned_size", size=[9, 1], mode=BI, align_corners=True),
    Case(U, [normal(2, 5, 6, 3).permuted(0, 3, 1, 2)], tag="bilinear_input_view", size=[8, 11], mode=BI, align_corners=False),
    Case(U, [normal(2, 5, 6, 3).permuted(0, 3, 1, 2)], tag="nearest_input_view", scale_factor=2.0),
]
