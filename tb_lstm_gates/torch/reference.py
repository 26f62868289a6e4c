"""Torch's own output of a probed call, laid out as the recomputed `Trace.outputs`, for the probe's self-check.

The probe recomputes each layer from the logged blocks; torch's output of
the same call must equal it (the shared self-check compares the two, see
`activations.Trace.reference_outputs`). NaN marks a place torch gives no
output for: masked steps of a packed sequence, and, for the lower layers
of a stacked `nn.LSTM` / `nn.GRU` (whose outputs torch keeps to itself),
every step but the one holding the layer's final state `h_n`.
"""

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from tb_lstm_gates.core import activations
from tb_lstm_gates.torch.cells import numpy_copy


def rnn(
    module: nn.LSTM | nn.GRU,
    pairs: list[tuple[Any, activations.Trace]],
    call: tuple[Any, ...],
    packed: bool,
    unbatched: bool,
) -> list[tuple[Any, activations.Trace]]:
    """`pairs` (`[(cell, Trace)]` of one `nn.LSTM` / `nn.GRU` call) with `reference_outputs` from torch.

    The top layer's reference is the call's own output; a lower layer's is
    what torch computes for that layer alone from the same input, state and
    weights the call had (torch's kernel, one layer at a time, as the
    stacked module runs it), since torch keeps those outputs to itself.

    Args:
      module: the `nn.LSTM` / `nn.GRU`.
      pairs: `[(TorchCell, Trace)]` of that call, every layer and direction.
      call: `(args, kwargs, output, weights)` as the probe captured it:
        `weights` maps each of the module's flat weight names to the tensor
        its forward read.
      packed: whether the input was a `PackedSequence`.
      unbatched: whether the input was unbatched `(time, features)`.
    """
    args, kwargs, output, weights = call
    outputs: list[Any] = [None] * (module.num_layers - 1) + [output[0]]
    if module.num_layers > 1:
        inputs = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                outputs[:-1] = _layer_outputs(module, weights, inputs, hx)[:-1]
        except Exception:  # a module torch's one-layer kind cannot stand for: its top layer is still checked
            pass
    sequences = [None if out is None else _batch_first(module, out, packed, unbatched) for out in outputs]
    done = []
    for cell, trace in pairs:
        if sequences[cell.index] is None:
            done.append((cell, trace))
            continue
        units = trace.outputs.shape[-1]
        half = sequences[cell.index][..., units * int(cell.reverse) : units * (int(cell.reverse) + 1)]
        # In the order of `trace.outputs`: reversed for the reverse direction.
        reference, valid = (half[:, ::-1], trace.valid[:, ::-1]) if cell.reverse else (half, trace.valid)
        # Torch gives no output at a packed sequence's padding: there the reference repeats the
        # recomputation, so those steps compare equal whatever order a comparison reads them in.
        done.append((cell, _with(trace, np.where(valid[..., None], reference, trace.outputs))))
    return done


def _batch_first(module: nn.Module, sequence: Any, packed: bool, unbatched: bool) -> np.ndarray:
    """One layer's output sequence as numpy `(batch, time, directions * units)`."""
    if packed:
        sequence = nn.utils.rnn.pad_packed_sequence(sequence, batch_first=True)[0]
    elif unbatched:
        sequence = sequence[None]
    elif not module.batch_first:
        sequence = sequence.transpose(0, 1)
    return numpy_copy(sequence)


def _layer_outputs(
    module: nn.LSTM | nn.GRU, weights: dict[str, torch.Tensor], inputs: Any, hx: Any
) -> list[Any]:
    """Torch's output of each layer of a stacked `nn.LSTM` / `nn.GRU` call, computed one layer at a time.

    Each layer runs in a one-layer module of the same kind (built on the
    meta device: no memory, no random numbers drawn) given that layer's
    weights of the call by `torch.func.functional_call`.
    """
    directions = 2 if module.bidirectional else 1
    lstm = isinstance(module, nn.LSTM)
    kind: Any = nn.LSTM if lstm else nn.GRU
    extra = {"proj_size": module.proj_size} if isinstance(module, nn.LSTM) else {}
    width = directions * (extra.get("proj_size") or module.hidden_size)
    outputs, x = [], inputs
    for k in range(module.num_layers):
        single = kind(
            module.input_size if k == 0 else width,
            module.hidden_size,
            bias=module.bias,
            batch_first=module.batch_first,
            bidirectional=module.bidirectional,
            device="meta",
            **extra,
        )
        params = {}
        for name in single._flat_weights_names:
            base, suffix = name.split("_l0")
            params[name] = weights["%s_l%d%s" % (base, k, suffix)]
        state = None
        if hx is not None:
            rows = slice(k * directions, (k + 1) * directions)
            state = tuple(h[rows] for h in hx) if isinstance(hx, tuple) else hx[rows]
        x = torch.func.functional_call(single, params, (x, state))[0]
        outputs.append(x)
    return outputs


def cell(trace: activations.Trace, output: Any, unbatched: bool) -> activations.Trace:
    """`trace` (one call of an `nn.LSTMCell` / `nn.GRUCell`) with `reference_outputs`: the h it returned."""
    h = numpy_copy(output[0] if isinstance(output, tuple) else output)
    return _with(trace, (h[None] if unbatched else h)[:, None])


def _with(trace: activations.Trace, reference: np.ndarray) -> activations.Trace:
    return dataclasses.replace(trace, reference_outputs=np.ascontiguousarray(reference, trace.outputs.dtype))
