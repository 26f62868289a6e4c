"""PyTorch recurrent modules as cells: finding them in a module tree and splitting their weights.

Every `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` and `nn.GRUCell`, also inside
`DataParallel`, `DistributedDataParallel` and `torch.compile` wrappers, one
`TorchCell` per stacked layer and direction, split with `layouts.torch_lstm`
/ `layouts.torch_gru`; `gate_blocks` gives their per-gate tensors.
"""

import dataclasses

import torch
from torch import nn

from tb_lstm_gates.core import layouts

_LSTM_TYPES = (nn.LSTM, nn.LSTMCell)
_RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)
_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


@dataclasses.dataclass(frozen=True)
class TorchCell:
    """One layer and direction of an `nn.LSTM` / `nn.GRU`, or one cell module.

    Attributes:
      layer: its name in the logs, e.g. `encoder/rnn/l0_reverse`.
      layout: its `layouts.Layout` (on `layouts.torch_arrays`).
      module: the `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` or `nn.GRUCell`.
      params: mapping from the layout's weight names to the module's parameters.
      index: stacked layer index (0 for cells).
      reverse: whether it is the reverse direction of a bidirectional module.
    """

    layer: str
    layout: layouts.Layout
    module: nn.Module
    params: dict
    index: int = 0
    reverse: bool = False

    def arrays(self):
        """The weights as numpy copies, transposed as the layout takes them."""
        return layouts.torch_arrays({name: numpy_copy(p) for name, p in self.params.items()})


def numpy_copy(tensor):
    """A tensor as a float32 or float64 numpy array on the CPU, always a copy."""
    # A copy: the optimizer changes parameters in place, and the logger keeps
    # the previous step's arrays for `update_ratio`.
    tensor = tensor.detach().to("cpu", copy=True)
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.numpy()


def unwrap(module):
    """The module inside `DataParallel`, `DistributedDataParallel` and `torch.compile` wrappers."""
    while True:
        if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def _walk(module, path):
    module = unwrap(module)
    if isinstance(module, _RECURRENT_TYPES):
        yield path, module
        return
    for name, child in module.named_children():
        yield from _walk(child, path + (name,))


def _cells_of(path, module):
    """The `TorchCell`s of one recurrent module found at `path` (a tuple of names)."""
    base = "/".join(path) or _ROOT_NAMES[type(module)]
    lstm = isinstance(module, _LSTM_TYPES)
    projection = getattr(module, "proj_size", 0) > 0
    bias = module.bias
    layout = layouts.torch_lstm(projection, bias) if lstm else layouts.torch_gru(bias)
    if isinstance(module, (nn.LSTMCell, nn.GRUCell)):
        return [TorchCell(base, layout, module, {n: getattr(module, n) for n in layout.weights})]
    cells = []
    for k in range(module.num_layers):
        for reverse in (False, True) if module.bidirectional else (False,):
            suffix = "_l%d%s" % (k, "_reverse" if reverse else "")
            params = {n: getattr(module, n + suffix) for n in layout.weights}
            cells.append(
                TorchCell(
                    "%s/l%d%s" % (base, k, "_reverse" if reverse else ""), layout, module, params, k, reverse
                )
            )
    return cells


_ROOT_NAMES = {nn.LSTM: "lstm", nn.GRU: "gru", nn.LSTMCell: "lstm_cell", nn.GRUCell: "gru_cell"}


def find_cells(module, layers=None):
    """Every recurrent cell in `module`'s tree, as `TorchCell`s in module order.

    Args:
      module: an `nn.Module` (wrappers included).
      layers: None for every recurrent module, or a list of module paths
        (`encoder.rnn` or `encoder/rnn`); a path also selects everything below it.

    Raises:
      ValueError: a name in `layers` matches no recurrent module, or
        `module` holds none; the message lists those found.
    """
    if not isinstance(module, nn.Module):
        raise ValueError("expected a torch.nn.Module, got %r" % type(module).__name__)
    found = list(_walk(module, ()))
    cells = [cell for path, m in found for cell in _cells_of(path, m)]
    names = ["/".join(path) or _ROOT_NAMES[type(m)] for path, m in found]
    if not found:
        raise ValueError(
            "%s holds no nn.LSTM, nn.GRU, nn.LSTMCell or nn.GRUCell" % type(unwrap(module)).__name__
        )
    if layers is None:
        return cells
    wanted = [name.replace(".", "/").strip("/") for name in layers]
    unknown = [w for w, name in zip(wanted, layers) if not any(_under(n, w) for n in names)]
    if unknown:
        raise ValueError(
            "layers %s match no recurrent module; the recurrent modules are %s"
            % (", ".join(repr(u) for u in unknown), ", ".join(repr(n) for n in names))
        )
    selected = {n for n in names if any(_under(n, w) for w in wanted)}
    return [c for c in cells if any(_under(c.layer, n) for n in selected)]


def _under(name, prefix):
    return prefix == "" or name == prefix or name.startswith(prefix + "/")


def gate_blocks(module, layer=0, reverse=False):
    """The gate blocks of one PyTorch recurrent cell, as differentiable views of its parameters.

    Every block has the orientation of `x @ M` (Keras's): the input block of
    gate g is `weight_ih[g * H:(g + 1) * H].T`, shape `(in, H)`; recurrent
    blocks are `(H, H)` (`(proj, H)` with `proj_size`), biases `(H,)`, and
    the projection `weight_hr.T`, `(H, proj)`. Use them for any per-gate
    loss by hand.

    Args:
      module: an `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` or `nn.GRUCell` (wrappers allowed).
      layer: the stacked layer of an `nn.LSTM` / `nn.GRU`.
      reverse: the reverse direction of a bidirectional one.

    Returns:
      dict keyed by `(part, gate)`, e.g. `("recurrent", "forget")`.

    Example:

    ```python
    lstm = torch.nn.LSTM(8, 16)
    blocks = gate_blocks(lstm)
    loss = loss + 1e-3 * blocks["recurrent", "forget"].square().sum()
    ```
    """
    module = unwrap(module)
    if not isinstance(module, _RECURRENT_TYPES):
        raise ValueError(
            "gate_blocks takes an nn.LSTM, nn.GRU, nn.LSTMCell or nn.GRUCell, got %s; to cover a whole "
            "model, use find_cells or GatePenalty" % type(module).__name__
        )
    cells = _cells_of((), module)
    match = [c for c in cells if c.index == layer and c.reverse == reverse]
    if not match:
        raise ValueError(
            "%s has no layer=%r, reverse=%r; it has %s"
            % (
                type(module).__name__,
                layer,
                reverse,
                ", ".join("layer=%d, reverse=%s" % (c.index, c.reverse) for c in cells),
            )
        )
    return blocks_of_cell(match[0])


def blocks_of_cell(cell):
    """`{(part, gate): tensor}` of one `TorchCell`: views of its parameters, so penalties on them train."""
    blocks = {}
    for name, pieces in cell.layout.weights.items():
        param = cell.params[name]
        for piece in pieces:
            if piece.gates == (layouts.WHOLE,):
                blocks[piece.part, layouts.WHOLE] = param.T
                continue
            gates = param.unflatten(0, (len(piece.gates), -1))
            for g, gate in enumerate(piece.gates):
                blocks[piece.part, gate] = gates[g].T if gates.dim() == 3 else gates[g]
    return blocks
