"""Activation functions of the recurrences, in numpy, and what "saturated" means for each.

`function` turns an activation (a Keras name, a `Function`, a callable)
into a `Function`, which computes it and says where it is saturated.
"""

import dataclasses
from typing import Any

import numpy as np

from tb_lstm_gates.core import names


def sigmoid(x):
    # exp of -|x| never overflows; both branches agree with 1 / (1 + exp(-x)).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def hard_sigmoid(x):
    """Keras 3's `hard_sigmoid`: relu6(x + 3) / 6."""
    return np.clip((x + 3.0) / 6.0, 0.0, 1.0)


def relu(x):
    return np.maximum(x, 0).astype(np.asarray(x).dtype, copy=False)


def linear(x):
    return x


# Numpy twins of Keras activations, by their Keras names; tests/test_activations.py
# proves each equal to Keras's own. Other activations (Keras's gelu, elu,
# silu, ... and any callable) are given to the recurrences as callables by
# the framework's wing, which computes them with the backend's own function.
FUNCTIONS = {
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": np.tanh,
    "relu": relu,
    "linear": linear,
}

# What "saturated" means, per activation. Bounded activations saturate near
# their bounds: below / above these values (Karpathy et al., 2015). Any other
# activation (relu, elu, gelu, silu, selu, softplus, exponential, linear, a
# custom callable, ...) has no such range: there "saturated" means the
# activation is flat where the gate sits, its slope below SATURATION_SLOPE
# (a gradient through it shrinks tenfold or more), on the negative side of
# its input ("dead", `saturated_low`) or the positive side (`saturated_high`).
# For relu that is the fraction at exactly zero; for relu6 also the fraction
# at exactly 6; elu, selu, softplus, exponential, gelu, silu and mish are
# dead far enough on their negative side; linear and leaky_relu never
# saturate (0).
SATURATION_BOUNDS = names.SATURATION_BOUNDS
SATURATION_SLOPE = names.SATURATION_SLOPE
# The width of the difference that measures the slope: wide enough for
# float32, narrow next to the inputs' scale.
_SLOPE_STEP = 1e-2


@dataclasses.dataclass(frozen=True)
class Function:
    """An activation function as the recurrences use it.

    Attributes:
      name: its Keras name, or the callable's `__name__`.
      fn: numpy array in, numpy array (same shape) out.
    """

    name: str
    fn: object

    def __call__(self, z):
        return np.asarray(self.fn(z), dtype=np.asarray(z).dtype)

    def saturated(self, z, a):
        """`(low, high)` bool arrays: where the activation `a = fn(z)` is saturated (see SATURATION_BOUNDS)."""
        bounds = SATURATION_BOUNDS.get(self.name)
        if bounds is not None:
            return a < bounds[0], a > bounds[1]
        # The slope over one step away from zero: exact on piecewise linear
        # activations, so relu is dead exactly where it outputs 0.
        negative = z < 0
        step = np.where(negative, -_SLOPE_STEP, _SLOPE_STEP).astype(np.asarray(z).dtype)
        slope = np.abs(self(z + step).astype(np.float64) - a) / _SLOPE_STEP
        flat = slope < SATURATION_SLOPE
        return flat & negative, flat & ~negative


def function(activation: Any) -> "Function":
    """The `Function` of an activation: a name in FUNCTIONS, a `Function`, or a callable on numpy arrays."""
    if isinstance(activation, Function):
        return activation
    if isinstance(activation, str):
        if activation not in FUNCTIONS:
            raise ValueError(
                "activation %r is not one of %s; pass other activations as callables"
                % (activation, ", ".join(sorted(FUNCTIONS)))
            )
        return Function(activation, FUNCTIONS[activation])
    if callable(activation):
        return Function(getattr(activation, "__name__", type(activation).__name__), activation)
    raise ValueError("activation must be a name or a callable, got %r" % (activation,))
