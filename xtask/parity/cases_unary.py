"""Element-wise ops of one tensor, with their params and edge values.

Each op gets a generic case (random values, rank 3) and, where the op has kinks,
overflow, or a domain, an `edges` case of hand-picked values. PyTorch's conventions
at kinks are ferrograd's: abs'(0) = 0, relu'(0) = 0, leaky_relu'(0) = slope, clamp'
is 1 on the closed interval, pow'(exponent 0) = 0.
"""

import torch
import torch.nn.functional as F

from spec import INF, NAN, Case, normal, positive, values

OPS = {
    "negate": lambda x: -x,
    "abs": torch.abs,
    "exp": torch.exp,
    "ln": torch.log,
    "sqrt": torch.sqrt,
    "square": torch.square,
    "powf": lambda x, exponent: torch.pow(x, exponent),
    "powi": lambda x, exponent: torch.pow(x, exponent),
    "recip": torch.reciprocal,
    "sin": torch.sin,
    "cos": torch.cos,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "leaky_relu": lambda x, negative_slope: F.leaky_relu(x, negative_slope),
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "softplus": F.softplus,
    "softplus_with": lambda x, beta, threshold: F.softplus(x, beta=beta, threshold=threshold),
    "clamp": lambda x, min, max: torch.clamp(x, min=min, max=max),
    # nan_to_num also maps ±inf to the largest finite values, and its gradient is 0
    # at ±inf too; ferrograd's nans_to touches NaN only, so no case has infinities.
    "nans_to": lambda x, value: torch.nan_to_num(x, nan=value),
}

GENERIC = normal(2, 3, 4, scale=2.0)

# Around zero, both signs, kinks at exactly 0.
SIGNED = [-3.0, -1.0, -0.5, -1e-3, 0.0, 0.0, 1e-3, 0.5, 1.0, 3.0]
# Magnitudes that overflow a naive formula (exp(-x) for x = -100 in f32, 800 in f64).
LARGE = [-800.0, -100.0, -50.0, -20.0, -5.0, 0.0, 5.0, 20.0, 50.0, 100.0, 800.0]

CASES = [
    Case("negate", [GENERIC]),
    Case("negate", [values([0.0, -0.0, 1.5, -2.0, INF, -INF, NAN])], tag="edges"),
    Case("abs", [GENERIC]),
    Case("abs", [values(SIGNED)], tag="edges"),
    Case("abs", [values([NAN])], tag="nan"),
    Case("exp", [GENERIC]),
    # f32 overflows past 88.7, f64 past 709.8: inf with inf gradient on both sides.
    Case("exp", [values([-800.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 88.0, 89.0, 100.0, 709.0, 710.0, NAN])],
         tag="large"),
    Case("ln", [positive(2, 3, 4)]),
    # Negative inputs: NaN. Zero: -inf, gradient ±inf.
    Case("ln", [values([-2.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.0, 1e10])], tag="edges"),
    Case("sqrt", [positive(2, 3, 4)]),
    # Negative inputs: NaN with NaN gradient. Zero: 0 with gradient ±inf.
    Case("sqrt", [values([-4.0, -1e-3, 0.0, 1e-3, 0.25, 4.0, 1e10])], tag="edges"),
    Case("square", [GENERIC]),
    Case("square", [values([0.0, -3.0, 1e20, -1e20])], tag="edges"),  # 1e40 overflows f32
    Case("powf", [positive(2, 3, 4)], exponent=2.5),
    Case("powf", [positive(3, 4)], tag="sqrt", exponent=0.5),
    Case("powf", [positive(3, 4)], tag="neg", exponent=-1.5),
    Case("powf", [normal(3, 4)], tag="cube", exponent=3.0),  # negative bases, integral exponent
    Case("powf", [normal(3, 4)], tag="zero", exponent=0.0),  # value 1, gradient 0
    # Negative bases with a fractional exponent: NaN. Zero base: 0 (gradient 0) for
    # exponent 2.5, inf (gradient -inf) for -1.5.
    Case("powf", [values([-2.0, -0.5, 0.0, 0.5, 2.0])], tag="edges", exponent=2.5),
    Case("powf", [values([-2.0, 0.0, 0.5, 2.0])], tag="edges_neg", exponent=-1.5),
    Case("powf", [values([-2.0, 0.0, 2.0])], tag="edges_zero", exponent=0.0),
    Case("powi", [normal(2, 3, 4)], exponent=3),
    Case("powi", [normal(3, 4)], tag="square", exponent=2),
    Case("powi", [normal(3, 4, scale=0.5, shift=2.0)], tag="neg", exponent=-2),
    Case("powi", [normal(3, 4)], tag="zero", exponent=0),
    Case("powi", [normal(3, 4)], tag="one", exponent=1),
    Case("powi", [values([0.0, 1.0, -1.0, 2.0])], tag="edges_neg", exponent=-2),  # 0 -> inf
    Case("recip", [normal(3, 4, scale=0.5, shift=2.0)]),
    Case("recip", [values([0.0, 1e-3, -1e-3, 1.0, -4.0, 1e30])], tag="edges"),
    Case("sin", [GENERIC]),
    Case("sin", [values([0.0, 1.5707963267948966, -3.141592653589793, 100.0, -1000.0, NAN])], tag="edges"),
    Case("cos", [GENERIC]),
    Case("cos", [values([0.0, 1.5707963267948966, -3.141592653589793, 100.0, -1000.0])], tag="edges"),
    Case("tanh", [GENERIC]),
    Case("tanh", [values([-50.0, -20.0, -5.0, -0.5, 0.0, 0.5, 5.0, 20.0, 50.0, NAN])], tag="edges"),
    Case("sigmoid", [GENERIC]),
    Case("sigmoid", [values(LARGE + [NAN])], tag="large"),
    Case("relu", [GENERIC]),
    Case("relu", [values(SIGNED)], tag="edges"),
    Case("relu", [values([NAN])], tag="nan"),
    Case("relu", [normal()], tag="rank0"),
    Case("leaky_relu", [GENERIC], negative_slope=0.01),
    Case("leaky_relu", [values(SIGNED + [NAN])], tag="edges", negative_slope=0.2),  # slope at 0 and NaN
    Case("gelu", [GENERIC]),
    Case("gelu", [values([-10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0])], tag="edges"),
    Case("gelu_tanh", [GENERIC]),
    Case("gelu_tanh", [values([-10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0])], tag="edges"),
    Case("silu", [GENERIC]),
    Case("silu", [values(LARGE + [NAN])], tag="large"),
    Case("softplus", [GENERIC]),
    # Around the threshold 20 (x itself above it) and far on both sides.
    Case("softplus", [values([-100.0, -30.0, -20.0, 0.0, 19.9, 20.0, 20.1, 30.0, 100.0, NAN])], tag="large"),
    Case("softplus_with", [GENERIC], beta=2.0, threshold=10.0),
    Case("softplus_with", [values([-100.0, -10.0, 0.0, 9.5, 10.0, 10.5, 100.0])], tag="edges", beta=0.5,
         threshold=5.0),
    Case("clamp", [GENERIC], min=-0.5, max=1.5),
    Case("clamp", [values([-2.0, -0.5001, -0.4999, 0.0, 0.75, 1.4999, 1.5001, 3.0, NAN])], tag="edges", min=-0.5,
         max=1.5),
    # PyTorch 2.15 with float bounds: gradient 0 exactly at min and max (0.5 with
    # tensor bounds); ferrograd follows the older closed-interval convention.
    Case("clamp", [values([-0.5, 1.5])], tag="at_bounds", min=-0.5, max=1.5),
    # Bounds the wrong way round: PyTorch's min(max(x, min), max) is max everywhere.
    Case("clamp", [values([-2.0, 0.25, 0.5, 0.75, 1.0, 3.0, NAN])], tag="inverted", min=1.0, max=0.5),
    Case("nans_to", [values([NAN, 1.0, -2.0, NAN, 0.0, 3.5], shape=(2, 3))], value=0.0),
    Case("nans_to", [values([NAN, 1.0, -2.0, NAN, 0.0, 3.5])], tag="value", value=7.5),
    Case("exp", [normal()], tag="rank0"),
    Case("sin", [normal(4, 3, 2, 2)], tag="rank4"),
    # Non-contiguous inputs: a permuted view of contiguous data.
    Case("sin", [normal(2, 3, 4).permuted(2, 0, 1)], tag="of_view"),
    Case("exp", [normal(3, 4).permuted(1, 0)], tag="of_view"),
    Case("powf", [positive(2, 3, 4).permuted(1, 2, 0)], tag="of_view", exponent=1.5),
    Case("relu", [normal(2, 3, 2, 2).permuted(3, 1, 0, 2)], tag="of_view"),
]
