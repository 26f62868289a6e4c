"""Gate activations of PyTorch cells on a probe batch, recomputed in numpy from their split blocks."""

import warnings

import numpy as np
import torch
from torch import nn

from tb_lstm_gates.core import activations, callers
from tb_lstm_gates.torch.cells import numpy_copy, unwrap


def probe_traces(module, cells, probe):
    """`[(cell, activations.Trace)]`: what each of `cells` does on `probe`, from its split blocks.

    Runs `module(probe)` (or `module(*probe)` for a tuple) once, in eval
    mode without gradients, capturing each recurrent module's input and
    initial state by forward pre-hooks; restores every submodule's mode and
    the RNG state. Then recomputes each cell's recurrence in numpy from the
    split blocks (`tb_lstm_gates.core.activations`), layer after layer.
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
        warnings.warn(
            "tb-lstm-gates computes no probe activations for %s" % "; ".join(skipped),
            stacklevel=callers.user_stacklevel(),
        )
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
        x = numpy_copy(padded)
        mask = np.arange(x.shape[1])[None, :] < lengths.numpy()[:, None]
    else:
        x = numpy_copy(inputs)
        if x.ndim == 2:  # unbatched (time, features)
            x = x[None]
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        elif not module.batch_first:
            x = x.transpose(1, 0, 2)
    if hx is not None:
        hx = tuple(numpy_copy(h) for h in hx) if isinstance(hx, tuple) else numpy_copy(hx)
    directions = 2 if module.bidirectional else 1
    traced = []
    for k in range(module.num_layers):
        outputs = []
        for cell in [c for c in cells if c.index == k]:
            slot = k * directions + int(cell.reverse)
            state = (
                None if hx is None else (tuple(h[slot] for h in hx) if isinstance(hx, tuple) else hx[slot])
            )
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
        steps.append(numpy_copy(x).reshape(-1, x.shape[-1]))
        if i == 0:
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            if hx is not None:
                state = tuple(numpy_copy(h) for h in hx) if isinstance(hx, tuple) else numpy_copy(hx)
    if len({s.shape for s in steps}) != 1:
        skipped.append("%s (its calls had different batch sizes)" % cell.layer)
        return []
    return [(cell, _run(cell, cell.arrays(), np.stack(steps, axis=1), None, False, state))]
