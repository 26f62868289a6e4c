"""Gate activations of PyTorch cells on a probe batch, recomputed in numpy from their split blocks.

Every call counts. A recurrent module called several times in the probe
pass (a `GRUCell` or a one-token `nn.GRU` decoder called once per output
token, or one module shared by an encoder and a decoder) is one logged
layer, and its trace holds every call in call order: each call recomputed
from the input and state it was given, its steps appended on the time
axis. So the activation map spans all calls and the statistics cover them
all; a call with fewer sequences than the widest one is padded with masked
(invalid) rows, which the statistics leave out. Calls from separate places
are not told apart: they use the same weights, which is what is logged.

The probe leaves nothing behind: see `_ModelState`.
"""

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from tb_lstm_gates.core import activations, callers
from tb_lstm_gates.torch import reference, xlstm, xlstm_probe
from tb_lstm_gates.torch.cells import numpy_copy, unwrap

_CELL_TYPES = (nn.LSTMCell, nn.GRUCell)


def probe_traces(module, cells, probe):
    """`[(cell, activations.Trace)]`: what each of `cells` does on `probe`, from its split blocks.

    Runs `module(probe)` (or `module(*probe)` for a tuple) once, in eval
    mode without gradients, capturing every call of each recurrent module
    (input, initial state and output) at its `forward` method, so a wrapper
    calling `module.forward(...)` directly is seen too; afterwards every
    attribute of every submodule, the modes and the RNG state are as they
    were (`_ModelState`). Then recomputes each cell's recurrence in numpy
    from the split blocks (`tb_lstm_gates.core.activations`), call by call
    and layer after layer.

    Args:
      module: an `nn.Module`, or a mapping from model name to module as
        `find_cells` takes it; then `probe` is a mapping from some of those
        names to each model's probe, and the models run in the mapping's
        order in one pass.
      cells: `TorchCell`s of `module`.
      probe: a tensor, `PackedSequence` or tuple of arguments (a mapping of
        them for a mapping of models).
    """
    runs = _runs(module, probe)
    # Models the probe does not name are left out, as asked: no warning for them.
    reachable = {id(m) for root, _ in runs for m in root.modules()}
    cells = [c for c in cells if id(c.module) in reachable]
    modules = {id(c.module): c.module for c in cells}
    calls = {key: [] for key in modules}
    plain = {key: m for key, m in modules.items() if not isinstance(m, xlstm.XLSTM_TYPES)}
    with _ModelState([root for root, _ in runs]), _Intercepted(plain, calls):
        # xLSTM layers record their calls through their own hooks (the package's states live inside).
        handles = [
            handle
            for m in modules.values()
            if isinstance(m, xlstm.XLSTM_TYPES)
            for handle in xlstm_probe.register_layer(m, calls[id(m)])
        ]
        try:
            with torch.no_grad():
                for root, inputs in runs:
                    root.eval()
                    # A PackedSequence is a namedtuple, but one argument.
                    if isinstance(inputs, tuple) and not isinstance(inputs, nn.utils.rnn.PackedSequence):
                        root(*inputs)
                    else:
                        root(inputs)
        finally:
            for handle in handles:
                handle.remove()
    traced, skipped = [], []
    arrays = {c.layer: c.arrays() for c in cells}
    for key, m in modules.items():
        mine = [c for c in cells if c.module is m]
        if not calls[key]:
            skipped.append("%s (never called during the model's forward)" % _module_name(mine[0]))
            continue
        if isinstance(m, xlstm.XLSTM_TYPES):
            per_call = xlstm_probe.trace_layer_calls(m, mine, calls[key])
        elif isinstance(m, _CELL_TYPES):
            per_call = [
                [(mine[0], _trace_cell_call(mine[0], arrays[mine[0].layer], *call))] for call in calls[key]
            ]
        else:
            per_call = [_trace_rnn(m, mine, arrays, *call) for call in calls[key]]
        for i, cell in enumerate(mine):
            traced.append((cell, activations.concatenate([traces[i][1] for traces in per_call])))
    if skipped:
        warnings.warn(
            "tb-lstm-gates computes no probe activations for %s" % "; ".join(skipped),
            stacklevel=callers.user_stacklevel(),
        )
    order = {c.layer: i for i, c in enumerate(cells)}
    return sorted(traced, key=lambda pair: order[pair[0].layer])


def _module_name(cell):
    return cell.layer if isinstance(cell.module, _CELL_TYPES) else cell.layer.rsplit("/", 1)[0]


def _runs(module, probe):
    """`[(root module, its probe on its device)]` to run in order."""
    if isinstance(module, Mapping):
        if not isinstance(probe, Mapping) or not probe or set(probe) - set(module):
            raise ValueError(
                "with several models, probe must be a mapping from some of their names (%s) to each "
                "one's inputs, e.g. probe={%r: x}; got %s"
                % (
                    ", ".join(map(repr, module)),
                    next(iter(module)),
                    "keys %s" % ", ".join(map(repr, probe))
                    if isinstance(probe, Mapping)
                    else type(probe).__name__,
                )
            )
        pairs = [(module[name], probe[name]) for name in module if name in probe]
    else:
        pairs = [(module, probe)]
    runs = []
    for root, inputs in pairs:
        root = unwrap(root)
        device = next((p.device for p in root.parameters()), None)
        runs.append((root, inputs if device is None else _to_device(inputs, device)))
    return runs


def _to_device(probe, device):
    if isinstance(probe, tuple) and not isinstance(probe, nn.utils.rnn.PackedSequence):
        return tuple(_to_device(p, device) for p in probe)
    return probe.to(device) if hasattr(probe, "to") else probe


class _Intercepted:
    """Records every call of `modules` (`{id: module}`) in `calls` (`{id: [(args, kwargs, output, weights)]}`).

    An instance-level wrapper of each module's `forward` for the duration
    of the block: `module(...)` reaches it through `__call__`, and so does a
    wrapper's direct `module.forward(...)` (salesforce's `WeightDrop`), each
    call once. Afterwards each module's `__dict__` is as it was.
    """

    def __init__(self, modules, calls):
        self._modules = modules
        self._calls = calls

    def __enter__(self):
        self._saved = []
        for key, module in self._modules.items():
            self._saved.append((module, module.__dict__.get("forward", _MISSING)))
            module.forward = self._wrap(module, module.forward, self._calls[key])
        return self

    @staticmethod
    def _wrap(module, forward, calls):
        def recorded(*args, **kwargs):
            # The weights this call computes with, as an nn.LSTM / nn.GRU's forward reads them
            # (`_update_flat_weights`): after a wrapper set them, before the call.
            names = getattr(module, "_flat_weights_names", ()) if getattr(module, "num_layers", 1) > 1 else ()
            weights = {
                name: getattr(module, name, flat)
                for name, flat in zip(names, getattr(module, "_flat_weights", ()))
            }
            output = forward(*args, **kwargs)
            calls.append((args, kwargs, output, weights))
            return output

        return recorded

    def __exit__(self, *exc):
        for module, forward in self._saved:
            if forward is _MISSING:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = forward


class _ModelState:
    """Puts back, on exit, everything a forward pass may change on the modules below `roots`.

    For every submodule (each once): every entry of its `__dict__` (added
    entries removed, replaced ones put back, so `self.hidden = h` in
    `forward` is undone, as are modes, which live there as `training`);
    the contents of each list, dict and set it holds, put back in place, so
    the container keeps its identity (`self.history.append(h)`, a buffer
    reassigned in `_buffers`); and the values of its buffers and plain
    tensor attributes changed in place (told by the tensor's version
    counter, restored from a copy taken before; inference-mode tensors have
    no version counter and cannot be changed in place outside inference
    mode, so they are left out). Containers are restored
    shallowly: a list nested in a list and changed in place stays changed.
    Parameters are not copied: a forward pass that changes its own weights
    in place under `no_grad` is not supported. Also the CPU and CUDA RNG states.
    """

    def __init__(self, roots):
        self._roots = roots

    def __enter__(self):
        self._saved = []
        for m in _every_module(self._roots):
            entries = dict(vars(m))
            contents = {k: _contents(v) for k, v in entries.items() if isinstance(v, (list, dict, set))}
            tensors = [
                (t, t._version, t.detach().clone())
                for t in list(m._buffers.values()) + list(entries.values())
                if isinstance(t, torch.Tensor) and not isinstance(t, nn.Parameter) and not t.is_inference()
            ]
            self._saved.append((m, entries, contents, tensors))
        self._rng = torch.random.get_rng_state()
        self._cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return self

    def __exit__(self, *exc):
        for m, entries, contents, tensors in self._saved:
            now = vars(m)
            for key in [k for k in now if k not in entries]:
                del now[key]
            for key, value in entries.items():
                if now.get(key, _MISSING) is not value:
                    now[key] = value
            for key, saved in contents.items():
                _restore_contents(entries[key], saved)
            with torch.no_grad():
                for tensor, version, copy in tensors:
                    if tensor._version != version:
                        tensor.copy_(copy)
        torch.random.set_rng_state(self._rng)
        if self._cuda_rng is not None:
            torch.cuda.set_rng_state_all(self._cuda_rng)


_MISSING = object()


def _every_module(roots):
    """Each module below `roots` once: those torch tracks, and those held in plain lists, tuples and dicts,
    which `Module.modules()` does not see but a forward may still call (and change)."""
    seen, stack = set(), list(roots)
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        yield m
        stack.extend(m.children())
        for value in vars(m).values():
            held = (
                value.values()
                if isinstance(value, dict)
                else value
                if isinstance(value, (list, tuple))
                else ()
            )
            stack.extend(v for v in held if isinstance(v, nn.Module))


def _contents(container):
    return dict(container) if isinstance(container, dict) else list(container)


def _restore_contents(container, saved):
    if isinstance(container, dict):
        if list(container) != list(saved) or any(container[k] is not v for k, v in saved.items()):
            container.clear()
            container.update(saved)
    elif isinstance(container, set):
        if {id(v) for v in container} != {id(v) for v in saved}:
            container.clear()
            container.update(saved)
    elif len(container) != len(saved) or any(a is not b for a, b in zip(container, saved)):
        container[:] = saved


def _run(cell, arrays, x, mask, backwards, state):
    if cell.layout.cell == "lstm":
        return activations.lstm(cell.layout, arrays, x, mask, backwards, initial_state=state)
    state = None if state is None else (state,)
    return activations.gru(cell.layout, arrays, x, mask, backwards, reset_after=True, initial_state=state)


def _trace_rnn(module, cells, arrays, args, kwargs, output, weights):
    """Traces of every layer and direction of an `nn.LSTM` / `nn.GRU`, from one captured call, in `cells` order."""
    inputs = args[0] if args else kwargs["input"]
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    mask = None
    packed = isinstance(inputs, nn.utils.rnn.PackedSequence)
    unbatched = False
    if packed:
        padded, lengths = nn.utils.rnn.pad_packed_sequence(inputs, batch_first=True)
        x = numpy_copy(padded)
        mask = np.arange(x.shape[1])[None, :] < lengths.numpy()[:, None]
    else:
        x = numpy_copy(inputs)
        if x.ndim == 2:  # unbatched (time, features)
            unbatched = True
            x = x[None]
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        elif not module.batch_first:
            x = x.transpose(1, 0, 2)
    if hx is not None:
        hx = tuple(numpy_copy(h) for h in hx) if isinstance(hx, tuple) else numpy_copy(hx)
    directions = 2 if module.bidirectional else 1
    traces = {}
    for k in range(module.num_layers):
        outputs = []
        for cell in [c for c in cells if c.index == k]:
            slot = k * directions + int(cell.reverse)
            state = (
                None if hx is None else (tuple(h[slot] for h in hx) if isinstance(hx, tuple) else hx[slot])
            )
            trace = traces[cell.layer] = _run(cell, arrays[cell.layer], x, mask, cell.reverse, state)
            outputs.append(trace.outputs[:, ::-1] if cell.reverse else trace.outputs)
        x = np.concatenate(outputs, axis=-1)
    pairs = [(cell, traces[cell.layer]) for cell in cells]
    return reference.rnn(module, pairs, (args, kwargs, output, weights), packed, unbatched)


def _trace_cell_call(cell, arrays, args, kwargs, output, weights):
    """The one-step trace of one call of a cell module, from the state that call was given."""
    x = numpy_copy(args[0] if args else kwargs["input"])
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    state = None
    if hx is not None:
        state = tuple(numpy_copy(h) for h in hx) if isinstance(hx, tuple) else numpy_copy(hx)
    unbatched = x.ndim == 1
    if unbatched:  # (features,)
        x = x[None]
        state = (
            None
            if state is None
            else (tuple(s[None] for s in state) if isinstance(state, tuple) else state[None])
        )
    return reference.cell(_run(cell, arrays, x[:, None], None, False, state), output, unbatched)
