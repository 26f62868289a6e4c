"""`GatePenalty`: per-gate L1, L2 and soft-orthogonal penalties of PyTorch cells, as a differentiable loss term."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from tb_lstm_gates.core import gate_penalty, layouts
from tb_lstm_gates.core.gate_penalty import Coefficients
from tb_lstm_gates.logs import metadata
from tb_lstm_gates.torch.cells import TorchCell, blocks_of_cell, find_cells, unwrap

# Parts a coefficient key may name, and the parts a key naming only a gate covers.
PENALTY_PARTS = ("input", "recurrent", "input_bias", "recurrent_bias")
# A term parsed: `(coefficient of every gate, {gate or part/gate key: coefficient})`.
_Parsed = tuple[float, dict[str, float]]


class GatePenalty:
    """L1, L2 and soft-orthogonal penalties with one coefficient per gate or per block.

    The same terms as `tb_lstm_gates.keras.regularizers.GateRegularizer`, on the
    blocks of `gate_blocks` (`M` of shape `(rows, units)`, biases one row):

        l1 * sum(|M|) + l2 * sum(M ** 2) + orthogonal * ||M^T M - I||_F^2

    Each coefficient is a float >= 0 for every block, or a mapping whose
    keys name a gate (`"forget"`: that gate in every part) or one block
    (`"recurrent/forget"`), the block's key winning. Parts are `input`,
    `recurrent`, `input_bias` and `recurrent_bias`; gates are LSTM's input,
    forget, cell, output and GRU's reset, update, candidate. `orthogonal`
    given as a float or by gate applies to the recurrent blocks only, the
    square ones.

    Add it to the loss: `loss = loss + penalty(model)`. Give it to a
    `GateLogger` to log every block's penalty, each layer's total and the
    model's.

    Args:
      l1, l2, orthogonal: the coefficients, as above.
      layers: module paths to penalize, as `GateLogger` takes them; None for
        every recurrent module.

    Raises:
      ValueError: negative or non-numeric coefficients, or unknown keys; when
        called, keys that name no block of the model, or `orthogonal` on a
        non-square block.

    Example:

    ```python
    penalty = GatePenalty(l2={"recurrent/forget": 1e-3}, orthogonal=1e-4)
    loss = loss_fn(model(x), y) + penalty(model)
    ```
    """

    def __init__(
        self,
        l1: Coefficients = 0.0,
        l2: Coefficients = 0.0,
        orthogonal: Coefficients = 0.0,
        layers: Sequence[str] | None = None,
    ) -> None:
        self._terms = _parse_terms("GatePenalty", {"l1": l1, "l2": l2, "orthogonal": orthogonal})
        if layers is not None and (
            isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers)
        ):
            raise ValueError(
                "GatePenalty: layers must be None or a non-empty list of module paths, got %r" % (layers,)
            )
        self.layers = None if layers is None else list(layers)

    def cells(self, model: torch.nn.Module | Mapping[str, torch.nn.Module]) -> list[TorchCell]:
        """The `TorchCell`s this penalty covers in `model`."""
        cells = find_cells(model, self.layers)
        self._check_keys(cells)
        return cells

    def applies_to(self, cell: TorchCell) -> bool:
        """Whether any coefficient of this penalty is non-zero on a block of `cell`."""
        return any(
            self.coefficients(part, gate, view.shape[:-2] + view.shape[-1:])
            for part, gates, view in cell.layout.blocks(_shapes(cell))
            if part in PENALTY_PARTS
            for gate in gates
        )

    def coefficients(self, part: str, gate: str, shape: Sequence[int]) -> dict[str, float]:
        """`{term: float}` for one block of `shape`; raises for orthogonal on a non-square block."""
        result: dict[str, float] = {}
        for term, (default, per_key) in self._terms.items():
            value = per_key.get("%s/%s" % (part, gate))
            if value is None and (term != "orthogonal" or part == "recurrent"):
                value = per_key.get(gate, default)
            if value:
                result[term] = value
        if result.get("orthogonal") and (len(shape) != 2 or shape[0] != shape[1]):
            raise ValueError(
                "GatePenalty: orthogonal needs square blocks, but the %s/%s block has shape %s "
                "(input blocks are (in, H), recurrent blocks (proj_size, H) with a projection): leave it out "
                "of orthogonal" % (part, gate, tuple(shape))
            )
        return result

    def __call__(self, model: torch.nn.Module) -> torch.Tensor:
        """The total penalty of `model` (or of a mapping of named models), a differentiable scalar tensor."""
        total: torch.Tensor | None = None
        for cell in self.cells(model):
            for (part, gate), block in blocks_of_cell(cell).items():
                if part not in PENALTY_PARTS:
                    continue
                for term, c in self.coefficients(part, gate, block.shape).items():
                    value = c * _term(term, block)
                    total = value if total is None else total + value
        if total is None:
            # No coefficient applies: a zero on the model's device, so `loss + penalty(model)` still works.
            first = next(iter(model.values())) if isinstance(model, Mapping) else model
            param = next(unwrap(first).parameters())
            return torch.zeros((), dtype=param.dtype, device=param.device)
        return total

    def block_penalties(
        self, cell: TorchCell, arrays: Mapping[str, np.ndarray]
    ) -> list[tuple[str, dict[str, float]]]:
        """`[(part, {gate: penalty})]` of one cell's blocks that have a coefficient, recomputed in numpy.

        Blocks no coefficient names are left out, parts without any such
        block too, as the Keras callback and the TF1 hook log them: a series
        of zeros says nothing.
        """
        penalties: list[tuple[str, dict[str, float]]] = []
        for part, gates, view in cell.layout.blocks(arrays):
            if part not in PENALTY_PARTS:
                continue
            per_gate: dict[str, float] = {}
            for g, gate in enumerate(gates):
                block = np.asarray(view[..., g, :], np.float64)
                coefficients = self.coefficients(part, gate, block.shape)
                if coefficients:
                    per_gate[gate] = float(sum(c * _term(term, block) for term, c in coefficients.items()))
            if per_gate:
                penalties.append((part, per_gate))
        return penalties

    def _check_keys(self, cells: Sequence[TorchCell]) -> None:
        blocks = {
            "%s/%s" % (part, gate)
            for c in cells
            for part, gates, _ in c.layout.blocks(_shapes(c))
            for gate in gates
            if part in PENALTY_PARTS
        }
        gates = {key.split("/")[1] for key in blocks}
        for term, (_, per_key) in self._terms.items():
            unknown = sorted(k for k in per_key if k not in blocks and k not in gates)
            if unknown:
                raise ValueError(
                    "GatePenalty: %s names %s, which the penalized modules do not have; their keys are %s"
                    % (term, ", ".join(repr(k) for k in unknown), ", ".join(sorted(gates) + sorted(blocks)))
                )

    def __repr__(self) -> str:
        terms = ("%s=%r" % (t, per_key or default) for t, (default, per_key) in self._terms.items())
        return "GatePenalty(%s)" % ", ".join(terms)


def _shapes(cell: TorchCell) -> dict[str, np.ndarray]:
    """Stand-ins of the cell's shapes (broadcast views, no memory) to list its blocks."""
    zero = np.zeros((), np.float32)
    return layouts.torch_arrays({n: np.broadcast_to(zero, tuple(p.shape)) for n, p in cell.params.items()})


def _term(term: str, block: Any) -> Any:
    """One penalty term of one block, a torch tensor (for the loss) or a numpy array (for the logs)."""
    if term == "l1":
        return abs(block).sum()
    if term == "l2":
        return (block * block).sum()
    eye: torch.Tensor | np.ndarray
    if isinstance(block, torch.Tensor):
        eye = torch.eye(block.shape[-1], dtype=block.dtype, device=block.device)
    else:
        eye = np.eye(block.shape[-1], dtype=block.dtype)
    gram = block.T @ block - eye
    return (gram * gram).sum()


def _parse_terms(owner: str, terms: Mapping[str, Any]) -> dict[str, _Parsed]:
    """`{term: (default, {key: float})}`, or a ValueError naming every bad coefficient."""
    all_gates = set(metadata.LSTM_GATES) | set(metadata.GRU_GATES)
    valid = sorted(all_gates) + ["%s/%s" % (p, g) for p in PENALTY_PARTS for g in sorted(all_gates)]
    errors: list[str] = []
    parsed: dict[str, _Parsed] = {}
    for term, value in terms.items():
        if isinstance(value, Mapping):
            unknown = [k for k in value if not isinstance(k, str) or k not in valid]
            if unknown:
                errors.append(
                    "%s names unknown key %s; a key is a gate (%s) or a part/gate block with parts %s "
                    "(e.g. %s={'recurrent/forget': 1e-3})"
                    % (
                        term,
                        ", ".join(repr(k) for k in unknown),
                        ", ".join(sorted(all_gates)),
                        ", ".join(PENALTY_PARTS),
                        term,
                    )
                )
            items, default = dict(value), 0.0
        else:
            items, default = {}, value
        bad = [
            (k, v) for k, v in list(items.items()) + [(None, default)] if not gate_penalty.is_coefficient(v)
        ]
        if bad:
            errors.append(
                "%s must be a float >= 0 or a mapping from gate or part/gate to such floats, got %s"
                % (term, ", ".join(repr(v) + ("" if k is None else " for %s" % k) for k, v in bad))
            )
            continue
        parsed[term] = (float(default), {k: float(v) for k, v in items.items()})
    if errors:
        raise ValueError("%s: %s" % (owner, "; ".join(errors)))
    return parsed
