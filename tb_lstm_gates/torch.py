"""Per-gate views of PyTorch recurrent modules: `GateLogger`, `GatePenalty`, `gate_blocks`.

PyTorch fuses each LSTM's four gates (GRU's three) in `weight_ih_l{k}`
`(gates * H, in)`, `weight_hh_l{k}`, `bias_ih_l{k}` and `bias_hh_l{k}`, gates
in the order i, f, g, o (r, z, n for GRUs) on the first axis. This module
finds every `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` and `nn.GRUCell` in a module
tree (also inside `DataParallel`, `DistributedDataParallel` and
`torch.compile` wrappers) and splits them with `layouts.torch_lstm` /
`layouts.torch_gru`.

Names follow the module tree: a module at `encoder.rnn` logs layers
`encoder/rnn/l0`, `encoder/rnn/l0_reverse`, `encoder/rnn/l1`, ... (one per
stacked layer and direction); a cell module logs under its path alone
(`decoder/cell`). Parts: `input` (weight_ih), `recurrent` (weight_hh),
`input_bias` (bias_ih), `recurrent_bias` (bias_hh), `projection`
(weight_hr, gate `all`). Gates: LSTM input, forget, cell (g), output; GRU
reset (r), update (z), candidate (n).

Imports torch, numpy and tensorboard only: never TensorFlow or Keras.
"""

import dataclasses
import numbers
import re
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from tb_lstm_gates import activations, guard, layouts, metadata, penalties, stats, summary

_LSTM_TYPES = (nn.LSTM, nn.LSTMCell)
_RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)
_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
# Parts a coefficient key may name, and the parts a key naming only a gate covers.
PENALTY_PARTS = ("input", "recurrent", "input_bias", "recurrent_bias")
TERMS = ("l1", "l2", "orthogonal")


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
        return layouts.torch_arrays({name: _numpy(p) for name, p in self.params.items()})


def _numpy(tensor):
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
            cells.append(TorchCell("%s/l%d%s" % (base, k, "_reverse" if reverse else ""), layout, module, params,
                                   k, reverse))
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
            % (type(module).__name__, layer, reverse, ", ".join("layer=%d, reverse=%s" % (c.index, c.reverse)
                                                              for c in cells))
        )
    return _cell_blocks(match[0])


def _cell_blocks(cell):
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


class GatePenalty:
    """L1, L2 and soft-orthogonal penalties with one coefficient per gate or per block.

    The same terms as `tb_lstm_gates.regularizers.GateRegularizer`, on the
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

    def __init__(self, l1=0.0, l2=0.0, orthogonal=0.0, layers=None):
        self._terms = _parse_terms("GatePenalty", {"l1": l1, "l2": l2, "orthogonal": orthogonal})
        if layers is not None and (isinstance(layers, str) or not layers
                                   or not all(isinstance(n, str) for n in layers)):
            raise ValueError("GatePenalty: layers must be None or a non-empty list of module paths, got %r"
                             % (layers,))
        self.layers = None if layers is None else list(layers)

    def cells(self, model):
        """The `TorchCell`s this penalty covers in `model`."""
        cells = find_cells(model, self.layers)
        self._check_keys(cells)
        return cells

    def applies_to(self, cell):
        """Whether any coefficient of this penalty is non-zero on a block of `cell`."""
        return any(
            self.coefficients(part, gate, view.shape[:-2] + view.shape[-1:])
            for part, gates, view in cell.layout.blocks(_shapes(cell)) if part in PENALTY_PARTS
            for gate in gates
        )

    def coefficients(self, part, gate, shape):
        """`{term: float}` for one block of `shape`; raises for orthogonal on a non-square block."""
        result = {}
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

    def __call__(self, model):
        """The total penalty of `model`, a differentiable scalar tensor."""
        total = None
        for cell in self.cells(model):
            for (part, gate), block in _cell_blocks(cell).items():
                if part not in PENALTY_PARTS:
                    continue
                for term, c in self.coefficients(part, gate, block.shape).items():
                    value = c * _term(term, block)
                    total = value if total is None else total + value
        if total is None:
            # No coefficient applies: a zero on the model's device, so `loss + penalty(model)` still works.
            param = next(unwrap(model).parameters())
            return torch.zeros((), dtype=param.dtype, device=param.device)
        return total

    def block_penalties(self, cell, arrays):
        """`[(part, {gate: penalty})]` of one cell, recomputed in numpy from `layouts` for the logs."""
        penalties = []
        for part, gates, view in cell.layout.blocks(arrays):
            if part not in PENALTY_PARTS:
                continue
            per_gate = {}
            for g, gate in enumerate(gates):
                block = np.asarray(view[..., g, :], np.float64)
                per_gate[gate] = float(sum(
                    c * _term(term, block) for term, c in self.coefficients(part, gate, block.shape).items()
                ))
            penalties.append((part, per_gate))
        return penalties

    def _check_keys(self, cells):
        blocks = {"%s/%s" % (part, gate) for c in cells for part, gates, _ in c.layout.blocks(_shapes(c))
                  for gate in gates if part in PENALTY_PARTS}
        gates = {key.split("/")[1] for key in blocks}
        for term, (_, per_key) in self._terms.items():
            unknown = sorted(k for k in per_key if k not in blocks and k not in gates)
            if unknown:
                raise ValueError(
                    "GatePenalty: %s names %s, which the penalized modules do not have; their keys are %s"
                    % (term, ", ".join(repr(k) for k in unknown), ", ".join(sorted(gates) + sorted(blocks)))
                )

    def __repr__(self):
        terms = ("%s=%r" % (t, per_key or default) for t, (default, per_key) in self._terms.items())
        return "GatePenalty(%s)" % ", ".join(terms)


def _shapes(cell):
    """Stand-ins of the cell's shapes (broadcast views, no memory) to list its blocks."""
    zero = np.zeros((), np.float32)
    return layouts.torch_arrays({n: np.broadcast_to(zero, tuple(p.shape)) for n, p in cell.params.items()})


def _term(term, block):
    """One penalty term of one block, a torch tensor (for the loss) or a numpy array (for the logs)."""
    if term == "l1":
        return abs(block).sum()
    if term == "l2":
        return (block * block).sum()
    if isinstance(block, torch.Tensor):
        eye = torch.eye(block.shape[-1], dtype=block.dtype, device=block.device)
    else:
        eye = np.eye(block.shape[-1], dtype=block.dtype)
    gram = block.T @ block - eye
    return (gram * gram).sum()


def _parse_terms(owner, terms):
    """`{term: (default, {key: float})}`, or a ValueError naming every bad coefficient."""
    all_gates = set(metadata.LSTM_GATES) | set(metadata.GRU_GATES)
    valid = sorted(all_gates) + ["%s/%s" % (p, g) for p in PENALTY_PARTS for g in sorted(all_gates)]
    errors, parsed = [], {}
    for term, value in terms.items():
        if isinstance(value, Mapping):
            unknown = [k for k in value if not isinstance(k, str) or k not in valid]
            if unknown:
                errors.append(
                    "%s names unknown key %s; a key is a gate (%s) or a part/gate block with parts %s "
                    "(e.g. %s={'recurrent/forget': 1e-3})"
                    % (term, ", ".join(repr(k) for k in unknown), ", ".join(sorted(all_gates)),
                       ", ".join(PENALTY_PARTS), term)
                )
            items, default = dict(value), 0.0
        else:
            items, default = {}, value
        bad = [(k, v) for k, v in list(items.items()) + [(None, default)] if not _is_coefficient(v)]
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


def _is_coefficient(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value) and value >= 0


def _is_writer_rank():
    """Whether this process writes: alone, or global rank 0 of a `torch.distributed` group."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


class GateLogger:
    """Logs per-gate statistics and histograms of a PyTorch model's LSTMs and GRUs.

    For every block (part and gate) of every layer and direction: `l2`,
    `mean`, `std`, `min`, `max`, `mean_abs`, `max_abs`, `nonfinite` and
    `update_ratio`, and a histogram, for TensorBoard's "LSTM Gates" tab. Call
    `log(model, step)` before training (step 0) and after each epoch or
    every few batches. Under `torch.distributed` only global rank 0 writes.

    With `probe=x` (a batch of model inputs, or a tuple of positional
    arguments for `model(*probe)`), each logged step also holds what every
    gate does on it, as the Keras callback logs it: activation statistics,
    retention and, on histogram steps, activation maps. The probe runs as
    one `no_grad` pass in eval mode, with forward hooks that take each
    recurrent module's input and initial state (a packed sequence's lengths
    as its mask); the modules' modes and the RNG state are restored, so
    training is unchanged. A cell module called once per time step in a
    loop is probed over its calls in that pass, from the state given to its
    first call.

    With `penalty=` a `GatePenalty`, each step also holds the penalty of
    every block of the layers it penalizes (those with a non-zero
    coefficient), each such layer's total, the model's total and the `loss`
    given to `log`.

    Args:
      log_dir: the run directory (point `tensorboard --logdir` at it or its parent).
      histogram_freq: write histograms every this many logged steps; 0 for none.
      histogram_bins: buckets per gate histogram.
      layers: module paths to log (`encoder.rnn` or `encoder/rnn`); None for all.
      probe: None, a tensor of model inputs, or a tuple of arguments.
      penalty: None or the `GatePenalty` added to the loss.
      strict: raise logging failures instead of warning once and going on.

    Example:

    ```python
    with GateLogger("logs/run1", probe=x[:8]) as gates:
        gates.log(model, 0)
        for epoch in range(1, 4):
            ...  # train one epoch
            gates.log(model, epoch, loss=loss.item())
    ```
    """

    def __init__(self, log_dir, histogram_freq=1, histogram_bins=stats.DEFAULT_BINS, layers=None, probe=None,
                 penalty=None, strict=False):
        errors = guard.check_logging_args(log_dir, histogram_freq, histogram_bins)
        if layers is not None and (isinstance(layers, str) or not layers
                                   or not all(isinstance(n, str) for n in layers)):
            errors.append("layers must be None or a non-empty list of module paths, got %r" % (layers,))
        if penalty is not None and not isinstance(penalty, GatePenalty):
            errors.append("penalty must be None or a GatePenalty, got %r" % (penalty,))
        if probe is not None and not isinstance(probe, (torch.Tensor, tuple, nn.utils.rnn.PackedSequence)):
            errors.append("probe must be None, a tensor of model inputs or a tuple of arguments for "
                          "model(*probe), got %r" % type(probe).__name__)
        if errors:
            raise ValueError("GateLogger: " + "; ".join(errors))
        self.log_dir = str(log_dir)
        self.histogram_freq = histogram_freq
        self.histogram_bins = histogram_bins
        self.layers = None if layers is None else list(layers)
        self.probe = probe
        self.penalty = penalty
        self._writer = None
        self._logger = None
        self._logged = 0
        self._guard = guard.FailureGuard("GateLogger", self.log_dir, strict)

    def log(self, module, step, loss=None):
        """Writes one step of `module`'s gates (and probe, penalties, `loss`) at `step`."""
        if not _is_writer_rank() or self._guard.failed:
            return
        cells = find_cells(module, self.layers)
        histograms = self.histogram_freq > 0 and self._logged % self.histogram_freq == 0
        if self._guard.run(self._write_step, module, cells, int(step), histograms, loss):
            self._logged += 1

    def _write_step(self, module, cells, step, histograms, loss):
        if self._writer is None:
            self._writer = summary.GateSummaryWriter(self.log_dir)
            self._logger = summary.CellLogger(self._writer, self.histogram_bins)
        if self.probe is not None:
            for cell, trace in probe_traces(module, cells, self.probe):
                _write_trace(self._writer, cell.layer, trace, histograms)
        penalized = set()
        if self.penalty is not None:
            # Cells the penalty leaves at zero get no series: a tab of zeros says nothing.
            penalized = {c.layer for c in self.penalty.cells(module) if self.penalty.applies_to(c)}
        model_penalty = 0.0
        for cell in cells:
            arrays = cell.arrays()
            self._logger.log_cell(cell.layer, cell.layout, arrays, histograms)
            if cell.layer in penalized:
                model_penalty += penalties.write_cell_penalties(
                    self._writer, cell, self.penalty.block_penalties(cell, arrays)
                )
        if self.penalty is not None:
            penalties.write_model_totals(self._writer, model_penalty, loss)
        self._writer.end_step(step)

    def close(self):
        if self._writer is not None:
            self._guard.run(self._writer.close)
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _write_trace(writer, layer, trace, maps):
    writer.write_gate_stats(layer, trace.cell, metadata.ACTIVATION, trace.gates, activations.gate_statistics(trace))
    gate, horizon = activations.retention(trace)
    writer.write_scalar(layer, trace.cell, metadata.ACTIVATION, gate, metadata.RETENTION, horizon)
    if maps:
        writer.write_activation_maps(layer, trace.cell, trace.gates, activations.activation_map(trace))


def probe_traces(module, cells, probe):
    """`[(cell, activations.Trace)]`: what each of `cells` does on `probe`, from its split blocks.

    Runs `module(probe)` (or `module(*probe)` for a tuple) once, in eval
    mode without gradients, capturing each recurrent module's input and
    initial state by forward pre-hooks; restores every submodule's mode and
    the RNG state. Then recomputes each cell's recurrence in numpy from the
    split blocks (`tb_lstm_gates.activations`), layer after layer.
    """
    root = unwrap(module)
    device = next((p.device for p in root.parameters()), None)
    if device is not None:
        probe = _to_device(probe, device)
    modules = {id(c.module): c.module for c in cells}
    calls = {key: [] for key in modules}

    def capture(mod, args, kwargs):
        calls[id(mod)].append((args, kwargs))

    handles = [m.register_forward_pre_hook(capture, with_kwargs=True) for m in modules.values()]
    modes = [(m, m.training) for m in root.modules()]
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        root.eval()
        with torch.no_grad():
            # A PackedSequence is a namedtuple, but one argument.
            if isinstance(probe, tuple) and not isinstance(probe, nn.utils.rnn.PackedSequence):
                root(*probe)
            else:
                root(probe)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    traced, skipped = [], []
    for key, m in modules.items():
        mine = [c for c in cells if c.module is m]
        if not calls[key]:
            skipped.append("%s (not called by the model's forward)" % mine[0].layer.rsplit("/", 1)[0])
            continue
        if isinstance(m, (nn.LSTMCell, nn.GRUCell)):
            traced.extend(_trace_cell(mine[0], calls[key], skipped))
        else:
            traced.extend(_trace_rnn(m, mine, *calls[key][0]))
    if skipped:
        warnings.warn("tb-lstm-gates computes no probe activations for %s" % "; ".join(skipped), stacklevel=3)
    order = {c.layer: i for i, c in enumerate(cells)}
    return sorted(traced, key=lambda pair: order[pair[0].layer])


def _to_device(probe, device):
    if isinstance(probe, tuple) and not isinstance(probe, nn.utils.rnn.PackedSequence):
        return tuple(_to_device(p, device) for p in probe)
    return probe.to(device) if hasattr(probe, "to") else probe


def _run(cell, arrays, x, mask, backwards, state):
    if cell.layout.cell == "lstm":
        return activations.lstm(cell.layout, arrays, x, mask, backwards, initial_state=state)
    state = None if state is None else (state,)
    return activations.gru(cell.layout, arrays, x, mask, backwards, reset_after=True, initial_state=state)


def _trace_rnn(module, cells, args, kwargs):
    """Traces of every layer and direction of an `nn.LSTM` / `nn.GRU`, from its captured call."""
    inputs = args[0] if args else kwargs["input"]
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    mask = None
    if isinstance(inputs, nn.utils.rnn.PackedSequence):
        padded, lengths = nn.utils.rnn.pad_packed_sequence(inputs, batch_first=True)
        x = _numpy(padded)
        mask = np.arange(x.shape[1])[None, :] < lengths.numpy()[:, None]
    else:
        x = _numpy(inputs)
        if x.ndim == 2:  # unbatched (time, features)
            x = x[None]
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        elif not module.batch_first:
            x = x.transpose(1, 0, 2)
    if hx is not None:
        hx = tuple(_numpy(h) for h in hx) if isinstance(hx, tuple) else _numpy(hx)
    directions = 2 if module.bidirectional else 1
    traced = []
    for k in range(module.num_layers):
        outputs = []
        for cell in [c for c in cells if c.index == k]:
            slot = k * directions + int(cell.reverse)
            state = None if hx is None else (
                tuple(h[slot] for h in hx) if isinstance(hx, tuple) else hx[slot])
            trace = _run(cell, cell.arrays(), x, mask, cell.reverse, state)
            traced.append((cell, trace))
            outputs.append(trace.outputs[:, ::-1] if cell.reverse else trace.outputs)
        x = np.concatenate(outputs, axis=-1)
    return traced


def _trace_cell(cell, calls, skipped):
    """The trace of a cell module over its calls in the probe pass, one time step per call."""
    steps, state = [], None
    for i, (args, kwargs) in enumerate(calls):
        x = args[0] if args else kwargs["input"]
        steps.append(_numpy(x).reshape(-1, x.shape[-1]))
        if i == 0:
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            if hx is not None:
                state = tuple(_numpy(h) for h in hx) if isinstance(hx, tuple) else _numpy(hx)
    if len({s.shape for s in steps}) != 1:
        skipped.append("%s (its calls had different batch sizes)" % cell.layer)
        return []
    return [(cell, _run(cell, cell.arrays(), np.stack(steps, axis=1), None, False, state))]


# A recurrent weight in a state_dict: `<module path>.<weight>[_l<k>[_reverse]]`.
_STATE_KEY = re.compile(r"^(?:(?P<path>.*)\.)?(?P<weight>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                        r"(?P<suffix>_l(?P<index>\d+)(?P<reverse>_reverse)?)?$")
# Prefixes that DistributedDataParallel / DataParallel and torch.compile put before a module's names.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def cells_from_state_dict(shapes):
    """The LSTM and GRU cells of a state_dict, found from parameter names and shapes.

    Args:
      shapes: mapping from state_dict key to shape.

    Returns:
      list of `(layer, layout, {weight name: key})`, with the names a live
      `GateLogger` gives the same modules (wrappers' `module.` and `_orig_mod.`
      prefixes dropped). Plain `nn.RNN` weights (one gate) are left out.
    """
    groups = {}
    for key in shapes:
        name = key
        while name.startswith(_WRAPPER_PREFIXES):
            name = name.split(".", 1)[1]
        name = name.replace("._orig_mod.", ".")
        match = _STATE_KEY.match(name)
        if match:
            groups.setdefault((match["path"] or "", match["suffix"] or ""), {})[match["weight"]] = key
    cells = []
    for (path, suffix), keys in groups.items():
        if "weight_ih" not in keys or "weight_hh" not in keys:
            continue
        units = shapes[keys["weight_hr"]][1] if "weight_hr" in keys else shapes[keys["weight_hh"]][1]
        n_gates, rest = divmod(shapes[keys["weight_ih"]][0], units)
        if rest or n_gates not in (3, 4):
            continue
        bias = "bias_ih" in keys
        layout = layouts.torch_lstm("weight_hr" in keys, bias) if n_gates == 4 else layouts.torch_gru(bias)
        if suffix:
            base = path.replace(".", "/") or ("lstm" if n_gates == 4 else "gru")
            layer = base + "/" + suffix[1:]  # `_l0_reverse` -> `l0_reverse`
        else:
            layer = path.replace(".", "/") or ("lstm_cell" if n_gates == 4 else "gru_cell")
        cells.append((layer, layout, {w: keys[w] for w in layout.weights}))
    return sorted(cells, key=lambda cell: cell[0])


def load_state_dict(path):
    """`(state_dict, step)` of a `torch.save`d file, never unpickling arbitrary objects.

    Takes a state_dict, a checkpoint dict holding one under `state_dict` or
    `model` (Lightning `.ckpt` files hold `state_dict`), loaded with
    `weights_only=True`. `step` is the checkpoint's `global_step` or `step`
    when it has one, else None.

    Raises:
      ValueError: the file cannot be loaded safely or holds no state_dict.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for unsafe or corrupt files.
        raise ValueError(
            "cannot load %s with torch.load(weights_only=True): %s; save the weights with "
            "torch.save(model.state_dict(), path)" % (path, str(e).strip().splitlines()[0])
        ) from None

    def is_state_dict(value):
        return isinstance(value, Mapping) and value and all(isinstance(v, torch.Tensor) for v in value.values())

    step = None
    if not is_state_dict(loaded) and isinstance(loaded, Mapping):
        for key in ("global_step", "step"):
            if isinstance(loaded.get(key), int):
                step = loaded[key]
                break
        loaded = next((loaded[k] for k in ("state_dict", "model") if is_state_dict(loaded.get(k))), loaded)
    if not is_state_dict(loaded):
        raise ValueError(
            "%s holds no state_dict: expected torch.save(model.state_dict()), a dict holding one under "
            "'state_dict' or 'model', or a Lightning .ckpt" % path
        )
    return loaded, step


def state_arrays(state, keys):
    """`{key: array}` of state_dict entries as the `torch_*` layouts take them (transposed copies)."""
    return layouts.torch_arrays({key: _numpy(state[key]) for key in keys})
