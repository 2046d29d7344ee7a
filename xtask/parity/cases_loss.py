"""Losses (`torch.nn.functional`), checked by ferrograd-nn's `tests/losses_parity.rs`.

Every loss in each of its reductions ("none" is the Rust `_unreduced` function), with
its options: class weights, `ignore_index` present among the targets (a real class and
a sentinel past the classes), label smoothing, `pos_weight`, `log_target`, Huber's
`delta` and smooth L1's `beta`, extra dims after the class axis, views, and logits of
±1e4. Class weights and `pos_weight` are constants (`.no_grad()`); float targets get
gradients, as in PyTorch.
"""

import warnings

import numpy as np
import torch.nn.functional as F

from spec import Case, Input, index_values, indices, normal, uniform, values


def probabilities(*shape, axis=1):
    """Rows of probabilities along `axis` (a softmax of normal values): soft targets."""

    def make(rng, s):
        z = rng.standard_normal(s) * 1.5
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    return Input(tuple(shape), make)


def log_probabilities(*shape, axis=1):
    """The logarithm of `probabilities`: the input of nll_loss and kl_div."""
    p = probabilities(*shape, axis=axis)
    return Input(p.shape, lambda rng, s: np.log(p.make(rng, s)))


def weights(*shape):
    """Positive constants: class weights, `pos_weight`, per-element weights."""
    return uniform(0.25, 3.0, *shape).no_grad()


def ce(x, t, reduction="mean", ignore_index=None, label_smoothing=0.0, weight=None):
    kwargs = {} if ignore_index is None else {"ignore_index": ignore_index}
    return F.cross_entropy(x, t, weight=weight, reduction=reduction, label_smoothing=label_smoothing, **kwargs)


def nll(x, t, reduction="mean", ignore_index=None, weight=None):
    kwargs = {} if ignore_index is None else {"ignore_index": ignore_index}
    return F.nll_loss(x, t, weight=weight, reduction=reduction, **kwargs)


def kl_div(x, t, reduction, log_target):
    with warnings.catch_warnings():
        # PyTorch warns that its 'mean' is not the divergence; that mean is tested on purpose.
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(x, t, reduction=reduction, log_target=log_target)


OPS = {
    "mse_loss": lambda x, y, reduction: F.mse_loss(x, y, reduction=reduction),
    "l1_loss": lambda x, y, reduction: F.l1_loss(x, y, reduction=reduction),
    "huber_loss": lambda x, y, reduction, delta: F.huber_loss(x, y, reduction=reduction, delta=delta),
    "smooth_l1_loss": lambda x, y, reduction, beta: F.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
    # Class-index targets; `ignore_index` absent from params means PyTorch's default
    # (-100, which no target equals: ferrograd's `None`).
    "cross_entropy": lambda x, t, **p: ce(x, t, **p),
    "cross_entropy_weighted": lambda x, t, w, **p: ce(x, t, weight=w, **p),
    "cross_entropy_probabilities": lambda x, t, **p: ce(x, t, **p),
    "cross_entropy_probabilities_weighted": lambda x, t, w, **p: ce(x, t, weight=w, **p),
    "nll_loss": lambda x, t, **p: nll(x, t, **p),
    "nll_loss_weighted": lambda x, t, w, **p: nll(x, t, weight=w, **p),
    "binary_cross_entropy_with_logits": lambda x, y, reduction: F.binary_cross_entropy_with_logits(
        x, y, reduction=reduction
    ),
    "binary_cross_entropy_with_logits_pos_weight": lambda x, y, pw, reduction: F.binary_cross_entropy_with_logits(
        x, y, pos_weight=pw, reduction=reduction
    ),
    "binary_cross_entropy_with_logits_weighted": lambda x, y, w, pw, reduction: F.binary_cross_entropy_with_logits(
        x, y, weight=w, pos_weight=pw, reduction=reduction
    ),
    "kl_div": lambda x, t, **p: kl_div(x, t, **p),
}

REDUCTIONS = ("mean", "sum", "none")

# Logits of ±1e4 beside ordinary ones: softmax saturates to exactly 0 and 1 there.
EXTREME_LOGITS = [[1e4, -1e4, 0.0, 1.0], [-1e4, -1e4, 1e4, 2.0], [1e4, 1e4, -1e4, 0.5]]
EXTREME_LABELS = [1, 2, 0]
# A target index of 2 (a real class) and 7 (past the 5 classes): both ignorable.
LABELS_WITH_2 = [2, 0, 4, 2, 1, 3]
LABELS_WITH_7 = [7, 0, 4, 7, 1, 3]

CASES = []

for r in REDUCTIONS:
    CASES += [
        Case("mse_loss", [normal(3, 4), normal(3, 4)], tag=r, reduction=r),
        Case("l1_loss", [normal(3, 4), normal(3, 4)], tag=r, reduction=r),
        Case("huber_loss", [normal(3, 4, scale=2.0), normal(3, 4)], tag=r, reduction=r, delta=1.0),
        Case("smooth_l1_loss", [normal(3, 4, scale=2.0), normal(3, 4)], tag=r, reduction=r, beta=1.0),
        Case("cross_entropy", [normal(6, 5), indices(5, 6)], tag=r, reduction=r),
        Case(
            "cross_entropy",
            [normal(6, 5), index_values(LABELS_WITH_2)],
            tag=f"ignore_smoothing_{r}",
            reduction=r,
            ignore_index=2,
            label_smoothing=0.1,
        ),
        Case(
            "cross_entropy_weighted",
            [normal(6, 5), index_values(LABELS_WITH_7), weights(5)],
            tag=f"ignore_smoothing_{r}",
            reduction=r,
            ignore_index=7,
            label_smoothing=0.2,
        ),
        Case("cross_entropy_weighted", [normal(6, 5), indices(5, 6), weights(5)], tag=r, reduction=r),
        Case("cross_entropy_probabilities", [normal(4, 5), probabilities(4, 5)], tag=r, reduction=r),
        Case(
            "cross_entropy_probabilities_weighted",
            [normal(4, 5), probabilities(4, 5), weights(5)],
            tag=f"smoothing_{r}",
            reduction=r,
            label_smoothing=0.15,
        ),
        Case("nll_loss", [log_probabilities(6, 5), indices(5, 6)], tag=r, reduction=r),
        Case(
            "nll_loss_weighted",
            [log_probabilities(6, 5), index_values(LABELS_WITH_2), weights(5)],
            tag=f"ignore_{r}",
            reduction=r,
            ignore_index=2,
        ),
        Case("binary_cross_entropy_with_logits", [normal(4, 3, scale=3.0), uniform(0, 1, 4, 3)], tag=r, reduction=r),
        Case(
            "binary_cross_entropy_with_logits_pos_weight",
            [normal(4, 3, scale=3.0), uniform(0, 1, 4, 3), weights(3)],
            tag=r,
            reduction=r,
        ),
        Case(
            "binary_cross_entropy_with_logits_weighted",
            [normal(4, 3, scale=3.0), uniform(0, 1, 4, 3), weights(4, 3), weights(3)],
            tag=r,
            reduction=r,
        ),
    ]

for r in ("mean", "sum", "batchmean", "none"):
    CASES += [
        Case("kl_div", [log_probabilities(4, 5), probabilities(4, 5)], tag=r, reduction=r, log_target=False),
        Case("kl_div", [log_probabilities(4, 5), log_probabilities(4, 5)], tag=f"log_target_{r}", reduction=r,
             log_target=True),
    ]

CASES += [
    # Scalars, views, thresholds and ties.
    Case("mse_loss", [normal(), normal()], tag="scalar", reduction="mean"),
    Case("mse_loss", [normal(4, 3).permuted(1, 0), normal(3, 4)], tag="input_view", reduction="mean"),
    Case("l1_loss", [values([1.0, 2.0, 3.0, 0.0]), values([1.0, 0.0, 3.0, 0.5])], tag="ties", reduction="sum"),
    Case("huber_loss", [values([0.5, -0.5, 0.2, 2.0, -3.0]), values([0.0] * 5)], tag="at_delta", reduction="none",
         delta=0.5),
    Case("huber_loss", [normal(3, 4, scale=3.0), normal(3, 4)], tag="delta_2", reduction="mean", delta=2.0),
    Case("smooth_l1_loss", [values([0.5, -0.5, 0.2, 2.0, -3.0]), values([0.0] * 5)], tag="at_beta",
         reduction="none", beta=0.5),
    Case("smooth_l1_loss", [normal(3, 4), normal(3, 4)], tag="beta_0", reduction="mean", beta=0.0),
    # Cross-entropy: extra dims after the class axis, unbatched, views, extremes.
    Case("cross_entropy", [normal(2, 5, 3), indices(5, 2, 3)], tag="3d", reduction="mean", label_smoothing=0.1),
    Case("cross_entropy", [normal(2, 5, 3), indices(5, 2, 3)], tag="3d_none", reduction="none"),
    Case("cross_entropy", [normal(2, 3, 2, 2), indices(3, 2, 2, 2)], tag="4d", reduction="sum"),
    Case("cross_entropy", [normal(5), index_values(3)], tag="unbatched", reduction="mean"),
    Case("cross_entropy", [normal(5, 6).permuted(1, 0), indices(5, 6)], tag="logits_view", reduction="mean"),
    Case("cross_entropy", [values(EXTREME_LOGITS), index_values(EXTREME_LABELS)], tag="extreme", reduction="mean"),
    Case("cross_entropy", [values(EXTREME_LOGITS), index_values(EXTREME_LABELS)], tag="extreme_smoothing",
         reduction="none", label_smoothing=0.3),
    Case("cross_entropy_weighted", [values(EXTREME_LOGITS), index_values(EXTREME_LABELS), weights(4)],
         tag="extreme", reduction="mean", label_smoothing=0.1),
    # Every target ignored: PyTorch's mean is 0/0 = NaN, and the gradient 0.
    Case("cross_entropy", [normal(3, 4), index_values([1, 1, 1])], tag="all_ignored", reduction="mean",
         ignore_index=1),
    Case("cross_entropy_probabilities", [values(EXTREME_LOGITS), probabilities(3, 4)], tag="extreme",
         reduction="mean", label_smoothing=0.1),
    Case("cross_entropy_probabilities", [normal(2, 5, 3), probabilities(2, 5, 3)], tag="3d", reduction="none"),
    Case("nll_loss", [log_probabilities(2, 4, 3), indices(4, 2, 3)], tag="3d", reduction="mean"),
    # Binary cross-entropy at ±1e4, with targets 0, 1 and in between.
    Case(
        "binary_cross_entropy_with_logits",
        [values([[1e4, -1e4, 1e4], [-1e4, 0.0, 30.0]]), values([[1.0, 0.0, 0.0], [1.0, 0.5, 0.25]])],
        tag="extreme",
        reduction="none",
    ),
    Case(
        "binary_cross_entropy_with_logits_pos_weight",
        [values([[1e4, -1e4, 1e4], [-1e4, 0.0, -30.0]]), values([[1.0, 0.0, 0.5], [1.0, 0.5, 0.25]]), weights(3)],
        tag="extreme",
        reduction="mean",
    ),
    Case("binary_cross_entropy_with_logits", [normal(2, 3, 4), uniform(0, 1, 2, 3, 4)], tag="3d", reduction="mean"),
    # KL divergence with zeros in the target (0·ln 0 = 0); the target's gradient
    # there is NaN in PyTorch (xlogy's), so it is a constant here.
    Case(
        "kl_div",
        [log_probabilities(2, 3), values([[0.0, 0.25, 0.75], [0.5, 0.5, 0.0]]).no_grad()],
        tag="zero_target",
        reduction="batchmean",
        log_target=False,
    ),
]
