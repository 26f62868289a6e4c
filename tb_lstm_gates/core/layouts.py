"""Where each gate lives inside a recurrent cell's fused weights.

Pure numpy. A `Layout` maps each stored weight of a cell (by its short name,
e.g. `kernel`) to the `Piece`s it holds: a part (input, recurrent, bias, ...)
whose last (or first) axis concatenates the gates in a known order. Splitting
returns views of the weight, never copies.

Layouts for each framework, verified by recomputing one step of the
framework's own cell from the split blocks (see tests/test_layouts.py):

| builder | weights | gate order |
| --- | --- | --- |
| `keras_lstm` | kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u) | i, f, c, o |
| `keras_conv_lstm` | kernel ks+(in, 4f), recurrent_kernel ks+(f, 4f), bias (4f) | i, f, c, o |
| `keras_gru` | kernel (in, 3u), recurrent_kernel (u, 3u), bias (3u) or (2, 3u) | z, r, h |
| `cudnn_lstm` | as keras_lstm, bias (8u) = input bias then recurrent bias | i, f, c, o |
| `cudnn_gru` | as keras_gru, bias (6u) = input bias then recurrent bias | z, r, h |
| `tf1_lstm` | kernel (in + h, 4u), bias (4u), w_*_diag (u), projection/kernel | i, j, f, o |
| `tf1_gru` | gates/kernel (in + u, 2u), gates/bias, candidate/kernel, candidate/bias | r, u |
| `torch_lstm` | weight_ih (4H, in), weight_hh (4H, H or proj), bias_ih, bias_hh (4H), weight_hr (proj, H) | i, f, g, o |
| `torch_gru` | weight_ih (3H, in), weight_hh (3H, H), bias_ih, bias_hh (3H) | r, z, n |

PyTorch keeps the gates on the first axis of its (gates * H, in) matrices
(it computes `x @ W.T`). Its layouts take the transposes, `W.T` (see
`torch_arrays`): a transpose is a view, and every block then has the same
`(rows, units)` orientation as Keras's, which statistics do not care about
but the orthogonal penalty and the activation recurrences do.
"""

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tb_lstm_gates.core.names import GRU_GATES, LSTM_GATES

# Order of the gates along the split axis, in canonical names.
KERAS_LSTM_ORDER = LSTM_GATES  # i, f, c, o
TF1_LSTM_ORDER = ("input", "cell", "forget", "output")  # i, j, f, o
KERAS_GRU_ORDER = GRU_GATES  # z, r, h
TF1_GRU_GATES_ORDER = ("reset", "update")  # r, u
TORCH_LSTM_ORDER = LSTM_GATES  # i, f, g, o: g is the cell candidate
TORCH_GRU_ORDER = ("reset", "update", "candidate")  # r, z, n

# Gate name of a weight that is not split into gates (TF1's projection).
WHOLE = "all"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One part of a cell stored in (a slice of) one weight.

    Attributes:
      part: `input`, `recurrent`, `bias`, `input_bias`, `recurrent_bias`,
        `peephole` or `projection`.
      gates: gate names in the order they are concatenated along the last
        axis of the selected slice.
      rows: index applied to the weight's first axis before splitting (a
        slice for TF1's concatenated kernel and CuDNN's doubled bias, an int
        for the rows of Keras GRU's (2, 3u) bias), or None for the whole weight.
    """

    part: str
    gates: tuple[str, ...]
    rows: int | slice | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    """The pieces of every weight of one cell.

    Attributes:
      cell: cell kind written to the data (`lstm`, `gru`, `conv_lstm`).
      weights: mapping from weight name to a tuple of `Piece`s.
    """

    cell: str
    weights: dict[str, tuple[Piece, ...]]

    def blocks(self, arrays: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str, ...], np.ndarray]]:
        """Yields `(part, gates, view)` for every piece, `view` of shape (..., len(gates), units).

        Args:
          arrays: mapping from weight name to numpy array; every weight of the
            layout must be present.

        Raises:
          ValueError: an array is missing or its shape does not fit the layout.
        """
        for name, pieces in self.weights.items():
            if name not in arrays:
                raise ValueError(
                    "%s cell has no weight %r (it has %s)"
                    % (self.cell, name, ", ".join(sorted(arrays)) or "none")
                )
            for piece in pieces:
                yield piece.part, piece.gates, gate_view(arrays[name], piece, name)


def gate_view(array: npt.ArrayLike, piece: Piece, name: str = "weight") -> np.ndarray:
    """The slice of `array` that `piece` describes, with the gates on axis -2.

    Args:
      array: a weight, gates concatenated on its last axis.
      piece: the `Piece` to take.
      name: the weight's name, for error messages.

    Returns:
      A view of shape `(..., len(piece.gates), units)`: `view[..., g, :]` is
      gate `piece.gates[g]`.

    Raises:
      ValueError: the selected slice's last axis is not a multiple of the
        number of gates, or the row selection does not fit.
    """
    array = np.asarray(array)
    selected = array
    if piece.rows is not None:
        if array.ndim == 0:
            raise ValueError("%s is a scalar; expected an array" % name)
        n = array.shape[0]
        if isinstance(piece.rows, slice):
            start, stop, _ = piece.rows.indices(n)
            if piece.rows.stop is not None and piece.rows.stop > n or stop <= start:
                raise ValueError(
                    "%s of shape %s has no rows %s for its %s part"
                    % (name, array.shape, _slice_text(piece.rows), piece.part)
                )
        elif not -n <= piece.rows < n:
            raise ValueError(
                "%s of shape %s has no row %d for its %s part" % (name, array.shape, piece.rows, piece.part)
            )
        selected = array[piece.rows]
    n_gates = len(piece.gates)
    if selected.ndim == 0 or selected.shape[-1] % n_gates or selected.shape[-1] == 0:
        raise ValueError(
            "%s of shape %s does not split into %d gates (%s) along its last "
            "axis for its %s part" % (name, array.shape, n_gates, ", ".join(piece.gates), piece.part)
        )
    units = selected.shape[-1] // n_gates
    # Splitting one axis in two is always a view, whatever the strides.
    return selected.reshape(selected.shape[:-1] + (n_gates, units))


def split(array: npt.ArrayLike, piece: Piece, name: str = "weight") -> dict[str, np.ndarray]:
    """`{gate: view}` for one piece of a weight."""
    view = gate_view(array, piece, name)
    return {gate: view[..., g, :] for g, gate in enumerate(piece.gates)}


def _slice_text(s: slice) -> str:
    return "%s:%s" % ("" if s.start is None else s.start, "" if s.stop is None else s.stop)


def keras_lstm(cell: str = "lstm") -> Layout:
    """Keras 3 / tf_keras LSTM and LSTMCell."""
    return Layout(
        cell,
        {
            "kernel": (Piece("input", KERAS_LSTM_ORDER),),
            "recurrent_kernel": (Piece("recurrent", KERAS_LSTM_ORDER),),
            "bias": (Piece("bias", KERAS_LSTM_ORDER),),
        },
    )


def keras_conv_lstm() -> Layout:
    """Keras ConvLSTM1D/2D/3D: kernels have the spatial kernel size in front."""
    return keras_lstm(cell="conv_lstm")


def keras_gru(reset_after: bool = True) -> Layout:
    """Keras GRU and GRUCell; `reset_after=True` stores a (2, 3u) bias."""
    bias: tuple[Piece, ...]
    if reset_after:
        bias = (
            Piece("input_bias", KERAS_GRU_ORDER, rows=0),
            Piece("recurrent_bias", KERAS_GRU_ORDER, rows=1),
        )
    else:
        bias = (Piece("bias", KERAS_GRU_ORDER),)
    return Layout(
        "gru",
        {
            "kernel": (Piece("input", KERAS_GRU_ORDER),),
            "recurrent_kernel": (Piece("recurrent", KERAS_GRU_ORDER),),
            "bias": bias,
        },
    )


def _cudnn(cell: str, order: tuple[str, ...], units: int) -> Layout:
    n = len(order) * units
    return Layout(
        cell,
        {
            "kernel": (Piece("input", order),),
            "recurrent_kernel": (Piece("recurrent", order),),
            "bias": (
                Piece("input_bias", order, rows=slice(0, n)),
                Piece("recurrent_bias", order, rows=slice(n, 2 * n)),
            ),
        },
    )


def cudnn_lstm(units: int) -> Layout:
    """tf_keras CuDNNLSTM: bias (8u) holds the input bias, then the recurrent bias."""
    return _cudnn("lstm", KERAS_LSTM_ORDER, units)


def cudnn_gru(units: int) -> Layout:
    """tf_keras CuDNNGRU: bias (6u) holds the input bias, then the recurrent bias."""
    return _cudnn("gru", KERAS_GRU_ORDER, units)


def tf1_lstm(input_depth: int, peepholes: bool = False, projection: bool = False) -> Layout:
    """TF1 LSTMCell / BasicLSTMCell.

    The kernel (input_depth + h, 4u) concatenates the input rows and the
    recurrent rows (h = num_proj or u). `forget_bias` is added at run time and
    is not part of the stored bias.
    """
    weights: dict[str, tuple[Piece, ...]] = {
        "kernel": (
            Piece("input", TF1_LSTM_ORDER, rows=slice(0, input_depth)),
            Piece("recurrent", TF1_LSTM_ORDER, rows=slice(input_depth, None)),
        ),
        "bias": (Piece("bias", TF1_LSTM_ORDER),),
    }
    if peepholes:
        weights["w_i_diag"] = (Piece("peephole", ("input",)),)
        weights["w_f_diag"] = (Piece("peephole", ("forget",)),)
        weights["w_o_diag"] = (Piece("peephole", ("output",)),)
    if projection:
        weights["projection/kernel"] = (Piece("projection", (WHOLE,)),)
    return Layout("lstm", weights)


def tf1_gru(input_depth: int) -> Layout:
    """TF1 GRUCell: `gates/*` hold r, u; `candidate/*` the candidate."""

    def concatenated(order: tuple[str, ...]) -> tuple[Piece, ...]:
        return (
            Piece("input", order, rows=slice(0, input_depth)),
            Piece("recurrent", order, rows=slice(input_depth, None)),
        )

    return Layout(
        "gru",
        {
            "gates/kernel": concatenated(TF1_GRU_GATES_ORDER),
            "gates/bias": (Piece("bias", TF1_GRU_GATES_ORDER),),
            "candidate/kernel": concatenated(("candidate",)),
            "candidate/bias": (Piece("bias", ("candidate",)),),
        },
    )


def _torch_weights(order: tuple[str, ...], bias: bool) -> dict[str, tuple[Piece, ...]]:
    weights: dict[str, tuple[Piece, ...]] = {
        "weight_ih": (Piece("input", order),),
        "weight_hh": (Piece("recurrent", order),),
    }
    if bias:
        weights["bias_ih"] = (Piece("input_bias", order),)
        weights["bias_hh"] = (Piece("recurrent_bias", order),)
    return weights


def torch_lstm(projection: bool = False, bias: bool = True) -> Layout:
    """PyTorch nn.LSTM (one layer and direction) and nn.LSTMCell, on `torch_arrays`.

    Weight names drop PyTorch's `_l{k}` / `_reverse` suffixes. With
    `proj_size`, `weight_hh` acts on the projected state and `weight_hr`
    (proj, H) projects `o * tanh(c)`; it is not split. `bias=False` cells
    have no biases.
    """
    weights = _torch_weights(TORCH_LSTM_ORDER, bias)
    if projection:
        weights["weight_hr"] = (Piece("projection", (WHOLE,)),)
    return Layout("lstm", weights)


def torch_gru(bias: bool = True) -> Layout:
    """PyTorch nn.GRU (one layer and direction) and nn.GRUCell, on `torch_arrays`.

    The reset gate scales the recurrent projection of the candidate, bias
    included: Keras's `reset_after=True`.
    """
    return Layout("gru", _torch_weights(TORCH_GRU_ORDER, bias))


def torch_arrays(arrays: Mapping[str, npt.ArrayLike]) -> dict[str, np.ndarray]:
    """`{name: array.T}`: PyTorch's stored weights as the `torch_*` layouts take them (views)."""
    return {name: np.asarray(array).T for name, array in arrays.items()}
