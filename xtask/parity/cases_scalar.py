"""Element-wise ops of a tensor and a scalar (`x + 2.5`, ...)."""

from spec import INF, NAN, Case, normal, values

OPS = {
    "add_scalar": lambda x, scalar: x + scalar,
    "sub_scalar": lambda x, scalar: x - scalar,
    "mul_scalar": lambda x, scalar: x * scalar,
    "div_scalar": lambda x, scalar: x / scalar,
}

GENERIC = normal(2, 3, 4, scale=2.0)
EDGES = values([0.0, -1.0, 1e30, -1e-30, INF, -INF, NAN])

CASES = [
    Case("add_scalar", [GENERIC], scalar=2.5),
    Case("add_scalar", [EDGES], tag="edges", scalar=-1.25),
    Case("sub_scalar", [GENERIC], scalar=-1.25),
    Case("sub_scalar", [EDGES], tag="edges", scalar=0.75),
    Case("mul_scalar", [GENERIC], scalar=3.0),
    Case("mul_scalar", [GENERIC], tag="neg", scalar=-0.5),
    Case("mul_scalar", [EDGES], tag="edges", scalar=0.0),  # 0 · inf = NaN
    Case("div_scalar", [GENERIC], scalar=4.0),
    Case("div_scalar", [GENERIC], tag="third", scalar=0.3),  # not a power of two
    Case("div_scalar", [EDGES], tag="edges", scalar=-0.5),
]
