"""xLSTM's sLSTM and mLSTM layers (the `xlstm` package) as cells: per gate and per head.

Imported by `tb_lstm_gates.torch.cells` only when the `xlstm` package is
importable (`pip install tb-lstm-gates[xlstm]`); `XLSTM_TYPES` is empty otherwise.

**sLSTM** (`xlstm.sLSTMLayer`): every head is a small LSTM of its own (the
input projections are headwise, the recurrent kernel block-diagonal, the
bias per head), so each head logs as its own layer, `<path>/head<k>`, with
the usual parts `input` (head_dim in, head_dim out), `recurrent` (head_dim,
head_dim) and `bias`, gates `input`, `forget`, `cell` (z) and `output`
(`layouts.keras_lstm`, oriented as `x @ M`). The split follows what the
package runs, not its attribute names: `sLSTMLayer.forward` feeds the
module named `fgate` into the cell's input-gate slot and `igate` into the
forget-gate slot (`i, f, z, o = (self.fgate(x_conv), self.igate(x_conv),
...)` in xlstm 2.0.6), so the logged `input` gate's input weights are
`fgate.weight` and the `forget` gate's are `igate.weight`.
`tests/test_xlstm.py` recomputes a step of the package's vanilla forward
from the split blocks to hold that.

The recurrent kernel is read through the cell's own `recurrent_kernel`
proxy (the package's external layout `(heads, head_dim in, gates,
head_dim out)` on every backend) and the bias through `bias` (`(heads,
gates, head_dim)`).

**mLSTM** (`xlstm.mLSTMLayer`): one layer at the module's path, cell kind
`mlstm`. Its input and forget gates are one scalar per head: parts `input`
(the `igate` / `fgate` weights, `(3 * inner, heads)`, acting on the
concatenated q, k, v) and `bias`, gates `input` and `forget`, one unit per
head. The q, k and v projections are parts of their own, `query`, `key`,
`value` (gate `all`: headwise `(heads, out, in)` blocks, flattened per head).
"""

import dataclasses
import warnings
from typing import Any

import numpy as np

from tb_lstm_gates.core import layouts

try:  # the wing's optional dependency
    from xlstm import __version__ as XLSTM_VERSION
    from xlstm.blocks.mlstm.layer import mLSTMLayer
    from xlstm.blocks.slstm.layer import sLSTMLayer
except ImportError:  # pragma: no cover - exercised where xlstm is absent
    sLSTMLayer = mLSTMLayer = XLSTM_VERSION = None

# The releases whose sLSTM forward the split was verified against (tests/test_xlstm.py).
VERIFIED_VERSIONS = ("2.0.",)
_warned: list[str] = []

XLSTM_TYPES = () if sLSTMLayer is None else (sLSTMLayer, mLSTMLayer)
ROOT_NAMES = {} if sLSTMLayer is None else {sLSTMLayer: "slstm", mLSTMLayer: "mlstm"}

# The order the sLSTM cell holds its gates in (its `_permute_input` view
# `(..., gates, heads, head_dim)` and `bias` `(heads, gates, head_dim)`):
# i, f, z, o, in the canonical names.
SLSTM_ORDER = layouts.KERAS_LSTM_ORDER
# The layer's projection feeding each slot of the cell, in SLSTM_ORDER
# (see the module docstring: `fgate` feeds the input gate).
SLSTM_INPUT_MODULES = ("fgate", "igate", "zgate", "ogate")
MLSTM_PARTS = ("query", "key", "value")


def slstm_layout() -> layouts.Layout:
    """The layout of one sLSTM head: `kernel` (head_dim, 4 * head_dim), `recurrent_kernel`, `bias` (4 * head_dim)."""
    return layouts.keras_lstm()


def mlstm_layout() -> layouts.Layout:
    """The layout of one mLSTM layer (see the module docstring)."""
    gates = ("input", "forget")
    return layouts.Layout(
        "mlstm",
        {
            "gate_kernel": (layouts.Piece("input", gates),),
            "gate_bias": (layouts.Piece("bias", gates),),
            **{part: (layouts.Piece(part, (layouts.WHOLE,)),) for part in MLSTM_PARTS},
        },
    )


@dataclasses.dataclass(frozen=True)
class XLSTMCell:
    """One sLSTM head or one mLSTM layer, logged as a layer.

    Attributes:
      layer: its name in the logs (`blocks/1/xlstm/head0`, `blocks/0/xlstm`).
      layout: its `layouts.Layout`.
      module: the `sLSTMLayer` / `mLSTMLayer`.
      params: empty: the package's tensors hold every head together, so
        their `.grad` has no per-head split the logger could read (no
        `train_grad_norm` for xLSTM layers).
      head: the sLSTM head, None for an mLSTM layer.
      heads: the layer's number of heads.
      index, reverse: 0 and False (as `TorchCell`'s, for code that reads them).
      origins, grad_params: empty, as `TorchCell`'s: the weights are the
        package's own parameters, and no per-head `.grad` is read.
    """

    layer: str
    layout: layouts.Layout
    module: Any
    params: dict[str, Any]
    head: int | None
    heads: int
    index: int = 0
    reverse: bool = False
    origins: dict[str, str] = dataclasses.field(default_factory=dict)
    grad_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def sources(self) -> tuple[Any, ...]:
        """The parameters the logged weights are computed from: all of the layer's."""
        return tuple(self.module.parameters())

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights of this head (or layer) as numpy copies, as the layout names them."""
        if self.head is None:
            return mlstm_arrays(self.module)
        return slstm_arrays(self.module)[self.head]


def _numpy(tensor: Any) -> np.ndarray:
    array: np.ndarray = tensor.detach().to("cpu", copy=True).float().numpy()
    return array


def is_slstm(module: Any) -> bool:
    """Whether `module` is an `xlstm` sLSTM layer (False without the package)."""
    return sLSTMLayer is not None and isinstance(module, sLSTMLayer)


def slstm_arrays(layer: Any) -> list[dict[str, np.ndarray]]:
    """`[{kernel, recurrent_kernel, bias}]`, one mapping per head of an `sLSTMLayer`, as numpy copies.

    `kernel[:, g * d:(g + 1) * d]` is gate g's headwise input weight,
    transposed to `(head_dim in, head_dim out)`; `recurrent_kernel` likewise
    from the cell's `(heads, in, gates, out)` kernel; `bias` `(gates * head_dim,)`.
    """
    cell = layer.slstm_cell
    heads, d = cell.config.num_heads, cell.config.head_dim
    # (heads, out, in) per gate -> (heads, in, gates, out)
    inputs = np.stack([_numpy(getattr(layer, name).weight) for name in SLSTM_INPUT_MODULES], axis=1)
    kernel = inputs.transpose(0, 3, 1, 2)
    recurrent = _numpy(cell.recurrent_kernel.clone())  # (heads, in, gates, out)
    bias = _numpy(cell.bias.clone())  # (heads, gates, out)
    if inputs.shape[2:] != (d, d) or recurrent.shape != (heads, d, 4, d) or bias.shape != (heads, 4, d):
        raise ValueError(
            "tb-lstm-gates: the sLSTM layer's weights do not have the shapes of xlstm's 4-gate sLSTM "
            "(input %s, recurrent %s, bias %s for %d heads of %d units): only function='slstm' with "
            "headwise projections of expand factor 1 is supported"
            % (inputs.shape, recurrent.shape, bias.shape, heads, d)
        )
    return [
        {
            "kernel": np.ascontiguousarray(kernel[h].reshape(d, 4 * d)),
            "recurrent_kernel": np.ascontiguousarray(recurrent[h].reshape(d, 4 * d)),
            "bias": np.ascontiguousarray(bias[h].reshape(4 * d)),
        }
        for h in range(heads)
    ]


def mlstm_arrays(layer: Any) -> dict[str, np.ndarray]:
    """`{gate_kernel, gate_bias, query, key, value}` of an `mLSTMLayer`, as numpy copies."""
    cell = layer.mlstm_cell
    arrays = {
        # nn.Linear(3 * inner, heads): weight (heads, 3 * inner); gates on the last axis, heads as units.
        "gate_kernel": np.concatenate([_numpy(cell.igate.weight).T, _numpy(cell.fgate.weight).T], axis=-1),
        "gate_bias": np.concatenate([_numpy(cell.igate.bias), _numpy(cell.fgate.bias)]),
    }
    for part in MLSTM_PARTS:
        w = _numpy(getattr(layer, part[0] + "_proj").weight)  # (proj heads, out, in)
        arrays[part] = w.reshape(w.shape[0], -1)
    return arrays


def xlstm_cells(base: str, module: Any) -> list[XLSTMCell]:
    """The `XLSTMCell`s of one sLSTM / mLSTM layer found at `base` (its name in the logs)."""
    if not XLSTM_VERSION.startswith(VERIFIED_VERSIONS) and not _warned:
        _warned.append(XLSTM_VERSION)
        warnings.warn(
            "tb-lstm-gates splits xLSTM layers as xlstm %s runs them, verified for xlstm %s only: give "
            "GateLogger a probe=, whose self-check compares the recomputed h with the package's own"
            % (XLSTM_VERSION, " / ".join(v + "x" for v in VERIFIED_VERSIONS)),
            stacklevel=2,
        )
    if isinstance(module, sLSTMLayer):
        heads = module.slstm_cell.config.num_heads
        layout = slstm_layout()
        return [XLSTMCell("%s/head%d" % (base, h), layout, module, {}, h, heads) for h in range(heads)]
    return [XLSTMCell(base, mlstm_layout(), module, {}, None, module.config.num_heads)]
