"""Softmax and log-softmax along one or several axes.

PyTorch's softmax takes one dim; over several, the reference is
exp(x - logsumexp(x, dims)) (and x - logsumexp for log_softmax), which autograd
differentiates.
"""

import torch

from spec import Case, normal, values


def _softmax(x, axes):
    if len(axes) == 1:
        return torch.softmax(x, dim=axes[0])
    return torch.exp(x - torch.logsumexp(x, dim=axes, keepdim=True))


def _log_softmax(x, axes):
    if len(axes) == 1:
        return torch.log_softmax(x, dim=axes[0])
    return x - torch.logsumexp(x, dim=axes, keepdim=True)


OPS = {"softmax": _softmax, "log_softmax": _log_softmax}

# Logits far apart: the naive formula overflows; ferrograd shifts by the maximum.
LARGE = values([1e4, -1e4, 0.0, 50.0, 1000.0, 999.0, -1000.0, 3.0], shape=(2, 4))

CASES = []
for _op in OPS:
    CASES += [
        Case(_op, [normal(5, scale=2.0)], tag="r1", axes=[0]),
        Case(_op, [normal(3, 4, scale=2.0)], tag="r2_ax1", axes=[1]),
        Case(_op, [normal(3, 4, scale=2.0)], tag="r2_ax0", axes=[0]),
        Case(_op, [normal(2, 3, 4, scale=2.0)], tag="r3_ax1", axes=[1]),
        Case(_op, [normal(2, 3, 4, scale=2.0)], tag="r3_ax12", axes=[1, 2]),
        Case(_op, [normal(2, 3, 2, 3, scale=2.0)], tag="r4_ax3", axes=[3]),
        Case(_op, [LARGE], tag="large", axes=[1]),
        # Non-contiguous input: the normalised axis is not the innermost in memory.
        Case(_op, [normal(4, 3, scale=2.0).permuted(1, 0)], tag="of_view", axes=[1]),
    ]
