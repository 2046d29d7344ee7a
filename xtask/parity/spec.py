"""The vocabulary of parity cases: inputs (how their values are made) and cases.

A case names an op of the family's `OPS` table, its params, and its inputs:

    Case("powf", [positive(3, 4)], exponent=2.5)

The runner (`generate.py`) makes the inputs from a seed derived from the case's name,
applies the op in PyTorch, and writes the fixture. Nothing here is specific to an op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

NAN = math.nan
INF = math.inf


@dataclass(frozen=True)
class Input:
    """One input of a case.

    `make(rng, shape)` returns float64 (cast to the case's dtype later), bool or
    integer (`kind="index"`, stored as int64 whatever the case's dtype; ferrograd reads
    them as `usize` tensors, which get no gradient) values of `shape`. With `permute`, the op receives the view
    `base.permute(permute)` of the contiguous base tensor, in PyTorch and in Rust,
    and the fixture stores the base and the gradient with respect to the base.
    A float input with `grad=False` (`.no_grad()`: a loss's class weights, say) gets
    no gradient and so no `grad_input<i>`.
    """

    shape: tuple
    make: Callable[[np.random.Generator, tuple], np.ndarray]
    kind: str = "float"  # "float" (gets a gradient), "bool" or "index"
    permute: Optional[tuple] = None
    grad: bool = True

    def permuted(self, *axes: int) -> "Input":
        """This input seen through `permute(axes)` (a non-contiguous view)."""
        assert sorted(axes) == list(range(len(self.shape))), axes
        return Input(self.shape, self.make, self.kind, tuple(axes), self.grad)

    def no_grad(self) -> "Input":
        """This float input as a constant: PyTorch computes no gradient for it."""
        assert self.kind == "float", self.kind
        return Input(self.shape, self.make, self.kind, self.permute, False)


def normal(*shape: int, scale: float = 1.0, shift: float = 0.0) -> Input:
    """Standard normal values times `scale`, plus `shift`."""
    return Input(tuple(shape), lambda rng, s: rng.standard_normal(s) * scale + shift)


def uniform(lo: float, hi: float, *shape: int) -> Input:
    """Uniform values in [lo, hi)."""
    return Input(tuple(shape), lambda rng, s: rng.uniform(lo, hi, s))


def positive(*shape: int) -> Input:
    """Values in [0.1, 4): safe for ln, sqrt, fractional powers."""
    return uniform(0.1, 4.0, *shape)


def away_from_zero(*shape: int) -> Input:
    """Values with 0.5 <= |x| < 2 and random signs: safe divisors."""

    def make(rng, s):
        return rng.uniform(0.5, 2.0, s) * rng.choice([-1.0, 1.0], s)

    return Input(tuple(shape), make)


def ints(lo: int, hi: int, *shape: int) -> Input:
    """Integers in [lo, hi] as floats: many ties between two such inputs."""
    return Input(tuple(shape), lambda rng, s: rng.integers(lo, hi + 1, s).astype(np.float64))


def values(vals: Sequence[float], shape: Optional[Sequence[int]] = None) -> Input:
    """Exactly these values (edge cases), reshaped to `shape` if given."""
    arr = np.array(vals, dtype=np.float64)
    shape = tuple(shape) if shape is not None else arr.shape
    return Input(shape, lambda rng, s: arr.reshape(s).copy())


def mask(*shape: int) -> Input:
    """Random booleans (about half true)."""
    return Input(tuple(shape), lambda rng, s: rng.random(s) < 0.5, kind="bool")


def mask_values(vals: Sequence[bool], shape: Optional[Sequence[int]] = None) -> Input:
    """Exactly these booleans."""
    arr = np.array(vals, dtype=bool)
    shape = tuple(shape) if shape is not None else arr.shape
    return Input(shape, lambda rng, s: arr.reshape(s).copy(), kind="bool")


def indices(n: int, *shape: int) -> Input:
    """Random indices in [0, n) (of an axis of size `n`): repeats are likely."""
    return Input(tuple(shape), lambda rng, s: rng.integers(0, n, s), kind="index")


def index_values(vals: Sequence[int], shape: Optional[Sequence[int]] = None) -> Input:
    """Exactly these indices (repeats placed on purpose), reshaped to `shape` if given."""
    arr = np.array(vals, dtype=np.int64)
    shape = tuple(shape) if shape is not None else arr.shape
    return Input(shape, lambda rng, s: arr.reshape(s).copy(), kind="index")


class Case:
    """One parity case: `op` (a key of the family's OPS) applied to `inputs`.

    `params` go to the PyTorch function as keyword arguments and into the fixture's
    metadata for the Rust side. `name` defaults to the op's name plus `tag`; names
    are unique across all families (the runner checks). Every case is generated in
    each of `dtypes`.

    `diverges="why"` marks a case where ferrograd knowingly differs from PyTorch (a
    convention not followed yet): the Rust test expects a mismatch there, lists it on
    every run, and fails once the case matches, so the marker gets removed. Keep such
    cases down to the differing values.
    """

    def __init__(self, op, inputs, tag="", dtypes=("f32", "f64"), diverges=None, **params):
        self.op = op
        self.diverges = diverges
        self.inputs = list(inputs)
        self.tag = tag
        self.dtypes = tuple(dtypes)
        self.params = params

    @property
    def name(self) -> str:
        return f"{self.op}_{self.tag}" if self.tag else self.op
