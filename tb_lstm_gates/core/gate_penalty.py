"""The gate penalty shared by `GateRegularizer` and `tf1_gate_penalty`: its coefficients and its formula.

Per gate and term, `l1 * sum(|M|) + l2 * sum(M ** 2) + orthogonal *
||M^T M - I||_F^2` on the gate's block `M` (see `tb_lstm_gates.keras.regularizers`).
`per_gate_penalty` writes the formula once, over an array namespace: numpy
for the log (`numpy_ops`), `keras.ops` in a Keras loss, TensorFlow in a TF1
graph (`tf_ops`). `parse_coefficients` checks what the user gave and names
every problem. Imports numpy only.
"""

import numbers
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tb_lstm_gates.core import layouts

# A penalty coefficient: one float for every gate, or a float per gate
# ("forget") or block ("recurrent/forget") key.
Coefficients = float | Mapping[str, float]

CELL_GATES = {
    "lstm": layouts.KERAS_LSTM_ORDER,
    "conv_lstm": layouts.KERAS_LSTM_ORDER,
    "gru": layouts.KERAS_GRU_ORDER,
}
TERMS = ("l1", "l2", "orthogonal")
# A term's parsed coefficients: `({gate: float}, {(part, gate): float})`.
# The part of a lookup may be None (gate keys only), which no block key has.
# `coefficient_vectors`: `{term: a float per gate, or None when all zero}`.
Vectors = dict[str, list[float] | None]
ParsedCoefficients = tuple[dict[str, float], dict[tuple[str | None, str], float]]


def key_text(gates: Iterable[str], parts: Iterable[str]) -> str:
    """The valid coefficient keys, for error messages."""
    keys = list(gates) + ["%s/%s" % (p, g) for p in parts for g in gates]
    return ", ".join(keys)


def parse_coefficients(
    owner: str,
    cell: str,
    terms: Mapping[str, Any],
    parts: Sequence[str] | None = None,
    no_parts_hint: str = "",
) -> tuple[tuple[str, ...], dict[str, ParsedCoefficients], dict[str, float | dict[str, float]]]:
    """Checks coefficients; a ValueError names every problem and the valid keys.

    Args:
      owner: who takes them, for error messages.
      cell: the cell kind, a key of `CELL_GATES`.
      terms: `{term: float or mapping}` as the user gave them. A mapping's
        keys are gates (`"forget"`: every part of the gate) or blocks
        (`"recurrent/forget"`: that part only, overriding the gate's key).
      parts: the parts a block key may name, or None when block keys are
        not accepted (then `no_parts_hint` says why).

    Returns:
      `(gates, coefficients, config)`: `coefficients[term]` is a pair
      `({gate: float}, {(part, gate): float})` (see `coefficient_vectors`), `config`
      the values to store in a config, as floats.
    """
    if cell not in CELL_GATES:
        raise ValueError(
            "%s: cell must be one of %s, got %r" % (owner, ", ".join(repr(c) for c in CELL_GATES), cell)
        )
    gates = CELL_GATES[cell]
    errors: list[str] = []
    coefficients: dict[str, ParsedCoefficients] = {}
    config: dict[str, float | dict[str, float]] = {}
    for term, value in terms.items():
        per_gate: dict[str, float] = {}
        per_block: dict[tuple[str | None, str], float] = {}
        bad: list[tuple[Any, Any]] = []
        if isinstance(value, Mapping):
            unknown: list[Any] = []
            blocked: list[Any] = []
            for key, v in value.items():
                part, _, gate = str(key).rpartition("/")
                if gate not in gates or (part and parts is not None and part not in parts):
                    unknown.append(key)
                elif part and parts is None:
                    blocked.append(key)
                elif not is_coefficient(v):
                    bad.append((key, v))
                elif part:
                    per_block[part, gate] = float(v)
                else:
                    per_gate[gate] = float(v)
            if unknown:
                errors.append(
                    "%s names unknown key %s; the valid keys of a %s cell here are %s"
                    % (term, ", ".join(repr(k) for k in unknown), cell, key_text(gates, parts or ()))
                )
            if blocked:
                blocks = ", ".join(repr(k) for k in blocked)
                errors.append("%s names block %s: %s" % (term, blocks, no_parts_hint))
        elif is_coefficient(value):
            per_gate = dict.fromkeys(gates, float(value))
        else:
            bad.append(("every gate", value))
        if bad:
            errors.append(
                "%s must be a float >= 0 or a mapping from gate (or part/gate block) to such "
                "floats, got %s" % (term, ", ".join("%r for %s" % (v, k) for k, v in bad))
            )
            continue
        coefficients[term] = (per_gate, per_block)
        if isinstance(value, Mapping):
            config[term] = {str(k): float(v) for k, v in value.items()}
        else:
            config[term] = float(value)
    if errors:
        raise ValueError("%s: %s" % (owner, "; ".join(errors)))
    return gates, coefficients, config


def is_coefficient(value: Any) -> bool:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    # `numbers.Real` declares neither comparisons nor numpy's array protocols.
    number: Any = value
    return bool(np.isfinite(number) and number >= 0)


def coefficient_vectors(
    coefficients: Mapping[str, ParsedCoefficients],
    gates: Sequence[str],
    part: str | None = None,
    terms: Iterable[str] = TERMS,
) -> Vectors:
    """`{term: list of floats in the order of gates, or None when all zero}` for one part.

    A block key (`"recurrent/forget"`) wins over its gate's key (`"forget"`)
    on that part; `part=None` takes the gate keys only.
    """
    vectors: Vectors = {}
    for term in terms:
        per_gate, per_block = coefficients[term]
        vector = [per_block.get((part, g), per_gate.get(g, 0.0)) for g in gates]
        vectors[term] = vector if any(vector) else None
    return vectors


def per_gate_penalty(blocks: Any, coefficients: Mapping[str, Sequence[float] | None], xp: Any) -> Any:
    """The penalty of each gate, shape `(n_gates,)`.

    Args:
      blocks: tensor of shape `(rows, n_gates, units)`: `blocks[:, g, :]` is
        gate `g`'s block `M`.
      coefficients: `{term: list of n_gates floats, or None when all zero}`.
      xp: namespace with `const`, `zeros`, `sum`, `abs`, `square`, `einsum`, `eye`.
    """
    terms = []
    if coefficients.get("l1"):
        terms.append(xp.const(coefficients["l1"]) * xp.sum(xp.abs(blocks), (0, 2)))
    if coefficients.get("l2"):
        terms.append(xp.const(coefficients["l2"]) * xp.sum(xp.square(blocks), (0, 2)))
    if coefficients.get("orthogonal"):
        gram = xp.einsum("rgu,rgv->guv", blocks, blocks) - xp.eye(blocks.shape[-1])
        terms.append(xp.const(coefficients["orthogonal"]) * xp.sum(xp.square(gram), (1, 2)))
    if not terms:
        return xp.zeros(blocks.shape[1])
    return sum(terms[1:], terms[0])


def numpy_ops() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        const=lambda v: np.asarray(v, dtype=np.float64),
        zeros=lambda n: np.zeros(n),
        sum=lambda x, axis: np.sum(x, axis=axis),
        abs=np.abs,
        square=np.square,
        einsum=np.einsum,
        eye=lambda n: np.eye(n),
    )


def tf_ops(tf: Any, dtype: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        const=lambda v: tf.constant(v, dtype=dtype),
        zeros=lambda n: tf.zeros((n,), dtype=dtype),
        sum=lambda x, axis: tf.reduce_sum(x, axis=list(axis)),
        abs=tf.abs,
        square=tf.square,
        einsum=tf.einsum,
        eye=lambda n: tf.eye(n, dtype=dtype),
    )
