"""PyTorch recurrent modules as cells: finding them in a module tree and splitting their weights.

Every `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` and `nn.GRUCell`, also inside
`DataParallel`, `DistributedDataParallel` and `torch.compile` wrappers, one
`TorchCell` per stacked layer and direction, split with `layouts.torch_lstm`
/ `layouts.torch_gru`; `gate_blocks` gives their per-gate tensors.

Discovery follows torch's own tracking: every registered submodule
(attributes, `nn.ModuleList`, `nn.ModuleDict`, `nn.Sequential`, custom
modules, at any depth). A module reachable by several paths (one GRU held by
an encoder and a decoder) is one object, logged once, under its first path
in registration order, the path `named_modules()` gives it.
`unlogged_weights` names every recurrent weight left out, and why.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from tb_lstm_gates.core import layouts
from tb_lstm_gates.torch import weights, xlstm

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
      origins: mapping from the layout's weight names to where each comes
        from (`parameter`, `weight drop: weight_hh_l0_raw`, `parametrized:
        orthogonal`, ...; see `tb_lstm_gates.torch.weights`).
      grad_params: mapping from the layout's weight names to the leaf
        parameter whose `.grad` is that weight's gradient (those that have one).
      sources: the parameters the logged weights are computed from.
    """

    layer: str
    layout: layouts.Layout
    module: nn.Module
    params: dict
    index: int = 0
    reverse: bool = False
    origins: dict = dataclasses.field(default_factory=dict)
    grad_params: dict = dataclasses.field(default_factory=dict)
    sources: tuple = ()

    def arrays(self):
        """The weights as numpy copies, transposed as the layout takes them."""
        return layouts.torch_arrays({name: numpy_copy(p) for name, p in self.params.items()})


def numpy_copy(tensor: torch.Tensor) -> np.ndarray:
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


def _walk(module, path, seen):
    """`(path, module)` of every recurrent module below `module`, each object once (`seen` holds ids)."""
    module = unwrap(module)
    if id(module) in seen:
        return
    seen.add(id(module))
    if isinstance(module, _RECURRENT_TYPES + xlstm.XLSTM_TYPES):
        yield path, module
        return
    for name, child in module.named_children():
        yield from _walk(child, path + (name,), seen)


def _roots(module):
    """`[(path prefix, module)]` of one module, or of a mapping from model name to module."""
    if isinstance(module, Mapping):
        bad = [k for k, m in module.items() if not (isinstance(k, str) and k) or not isinstance(m, nn.Module)]
        if not module or bad:
            raise ValueError(
                "expected a torch.nn.Module or a non-empty mapping from model name (a non-empty str) to "
                "torch.nn.Module, e.g. {'encoder': encoder, 'decoder': decoder}; got %s"
                % (", ".join("%r: %s" % (k, type(module[k]).__name__) for k in bad) or "an empty mapping")
            )
        return [((k,), m) for k, m in module.items()]
    if not isinstance(module, nn.Module):
        raise ValueError(
            "expected a torch.nn.Module or a mapping from model name to torch.nn.Module, got %r"
            % type(module).__name__
        )
    return [((), module)]


def recurrent_modules(module):
    """`[(path, module)]` of every recurrent module of `module` (or of a mapping of named modules), once each."""
    seen = set()
    return [found for prefix, root in _roots(module) for found in _walk(root, prefix, seen)]


def _cells_of(path, module, parent=None):
    """The `TorchCell`s of one recurrent module found at `path` (a tuple of names), held by `parent`.

    Raises:
      weights.Unsplittable: a weight the module computes with cannot be read.
    """
    base = "/".join(path) or _root_name(module)
    if isinstance(module, xlstm.XLSTM_TYPES):
        return xlstm.xlstm_cells(base, module)
    lstm = isinstance(module, _LSTM_TYPES)
    projection = getattr(module, "proj_size", 0) > 0
    bias = module.bias
    layout = layouts.torch_lstm(projection, bias) if lstm else layouts.torch_gru(bias)
    if isinstance(module, (nn.LSTMCell, nn.GRUCell)):
        return [TorchCell(base, layout, module, **_resolved(module, parent, layout, ""))]
    cells = []
    for k in range(module.num_layers):
        for reverse in (False, True) if module.bidirectional else (False,):
            suffix = "_l%d%s" % (k, "_reverse" if reverse else "")
            cells.append(
                TorchCell(
                    "%s/l%d%s" % (base, k, "_reverse" if reverse else ""),
                    layout,
                    module,
                    index=k,
                    reverse=reverse,
                    **_resolved(module, parent, layout, suffix),
                )
            )
    return cells


def _resolved(module, parent, layout, suffix):
    """`TorchCell` fields `params`, `origins`, `grad_params`, `sources` of one layer and direction."""
    found = {n: weights.resolve(module, n + suffix, parent) for n in layout.weights}
    return {
        "params": {n: w.tensor for n, w in found.items()},
        "origins": {n: w.origin for n, w in found.items()},
        "grad_params": {n: w.grad_param for n, w in found.items() if w.grad_param is not None},
        "sources": tuple(p for w in found.values() for p in w.sources),
    }


def _parents(module):
    """`{id(child): the module holding it}` over `module`'s tree (or mapping of models), wrappers unwrapped."""
    parents = {}
    for _, root in _roots(module):
        for owner in unwrap(root).modules():
            for child in owner.children():
                parents.setdefault(id(unwrap(child)), owner)
    return parents


def split_cells(module):
    """`(cells, [(module path, why)])`: the `TorchCell`s of `module` in module order, and the
    recurrent modules whose weights cannot be read (left out, never an exception)."""
    parents = _parents(module)
    cells, unsplittable = [], []
    for path, m in recurrent_modules(module):
        try:
            cells.extend(_cells_of(path, m, parents.get(id(m))))
        except weights.Unsplittable as e:
            unsplittable.append((".".join(path) or _root_name(m), str(e)))
    return cells, unsplittable


_ROOT_NAMES = {
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.LSTMCell: "lstm_cell",
    nn.GRUCell: "gru_cell",
    **xlstm.ROOT_NAMES,
}


def _root_name(module):
    """The name of a recurrent module logged as the root, by its kind (a parametrized LSTM is a subclass)."""
    return next(name for kind, name in _ROOT_NAMES.items() if isinstance(module, kind))


def find_cells(
    module: nn.Module | Mapping[str, nn.Module], layers: Sequence[str] | None = None
) -> list[TorchCell]:
    """Every recurrent cell in `module`'s tree, as `TorchCell`s in module order.

    Args:
      module: an `nn.Module` (wrappers included), or a mapping from model
        name to module (`{"encoder": enc, "decoder": dec}`), named as if
        the models were held in an `nn.ModuleDict` with those keys
        (`encoder/gru/l0`, `decoder/l0` for a bare `nn.GRU`).
      layers: None for every recurrent module, or a list of module paths
        (`encoder.rnn` or `encoder/rnn`); a path also selects everything below it.

    Each cell's weights are those the module computes with in eval mode:
    behind weight drop, parametrizations and weight_norm/spectral_norm hooks
    (`tb_lstm_gates.torch.weights`). A module whose weights cannot be read
    (and a quantized one) is left out; `unlogged_weights` names it and why.

    Raises:
      ValueError: a name in `layers` matches no recurrent module, or
        `module` holds none; the message lists those found.
    """
    found = recurrent_modules(module)
    cells, unsplittable = split_cells(module)
    names = ["/".join(path) or _root_name(m) for path, m in found]
    if not found and not _quantized(module):
        held = ", ".join(type(unwrap(m)).__name__ for _, m in _roots(module))
        kinds = "nn.LSTM, nn.GRU, nn.LSTMCell or nn.GRUCell"
        if xlstm.XLSTM_TYPES:
            kinds = "nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, xlstm's sLSTMLayer or mLSTMLayer"
        raise ValueError("%s holds no %s" % (held, kinds))
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


def unlogged_weights(module, cells):
    """`[(weight, why)]`: every recurrent weight of `module` that none of `cells` logs, and why.

    A recurrent weight is a parameter named `weight_hh*` (torch's name for
    the weights acting on the previous state). It is unlogged when it
    belongs to an `nn.RNN` (one activation, no gates to split), to a module
    tb-lstm-gates does not know (a hand-written cell), or to a recurrent
    module that `layers` left out. Recurrent modules whose weights cannot be
    read (`split_cells`) and quantized LSTMs and GRUs are named too. Recurrent modules in a plain Python list,
    tuple or dict attribute are named too: torch does not track them (they
    are not in `parameters()`, `state_dict()` or `.to()`), so they are not
    logged either; `nn.ModuleList` / `nn.ModuleDict` make them part of the model.

    Args:
      module: as `find_cells` takes it.
      cells: the `TorchCell`s logged.
    """
    logged = {id(p) for c in cells for p in list(c.params.values()) + list(c.sources)}
    found, seen = [], set()  # a module shared by two models is looked at once
    found.extend((path, "its weights cannot be split: " + why) for path, why in split_cells(module)[1])
    found.extend(
        (path, "a quantized %s: its weights are packed, not tensors tb-lstm-gates can split by gate" % kind)
        for path, kind in _quantized(module)
    )
    for prefix, root in _roots(module):
        root = unwrap(root)
        for path, owner in root.named_modules(prefix=".".join(prefix)):
            if id(owner) in seen:
                continue
            seen.add(id(owner))
            for name, param in owner.named_parameters(recurse=False):
                if name.startswith("weight_hh") and id(param) not in logged:
                    found.append(("%s.%s" % (path, name) if path else name, _why_unlogged(owner)))
            for attribute, value in vars(owner).items():
                # `_modules`, `_parameters`, ...: torch's own registries.
                if (
                    not attribute.startswith("_")
                    and isinstance(value, (list, tuple, dict))
                    and any(
                        isinstance(v, nn.Module) and _has_recurrent_weight(v)
                        for v in (value.values() if isinstance(value, dict) else value)
                    )
                ):
                    found.append(
                        (
                            "%s.%s" % (path, attribute) if path else attribute,
                            "a plain Python %s holding recurrent modules, which torch does not track "
                            "(not in parameters(), state_dict() or .to()): hold them in nn.ModuleList "
                            "or nn.ModuleDict" % type(value).__name__,
                        )
                    )
    return found


def _quantized(module):
    """`[(module path, class name)]` of the quantized LSTMs and GRUs of `module` (torch.ao.nn.quantized)."""
    found = []
    for prefix, root in _roots(module):
        for path, m in unwrap(root).named_modules(prefix=".".join(prefix)):
            kind = type(m)
            if ".quantized" in kind.__module__ and ("LSTM" in kind.__name__ or "GRU" in kind.__name__):
                found.append((path or kind.__name__, kind.__name__))
    return found


def _why_unlogged(owner):
    if isinstance(owner, nn.RNN):
        return "an nn.RNN has one activation, no gates to split"
    if isinstance(owner, _RECURRENT_TYPES):
        return "layers= leaves its module out"
    return (
        "it belongs to a %s, not an nn.LSTM, nn.GRU, nn.LSTMCell or nn.GRUCell, whose gate layout "
        "tb-lstm-gates knows" % type(owner).__name__
    )


def _has_recurrent_weight(module):
    return any(name.rsplit(".", 1)[-1].startswith("weight_hh") for name, _ in module.named_parameters())


def _under(name, prefix):
    return prefix == "" or name == prefix or name.startswith(prefix + "/")


def gate_blocks(
    module: nn.Module, layer: int = 0, reverse: bool = False
) -> dict[tuple[str, str], torch.Tensor]:
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
    try:
        cells = _cells_of((), module)
    except weights.Unsplittable as e:
        raise ValueError("gate_blocks cannot split %s: %s" % (type(module).__name__, e)) from None
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
