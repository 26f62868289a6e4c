"""Torch's own output of a probed call, laid out as the recomputed `Trace.outputs`, for the probe's self-check.

The probe recomputes each layer from the logged blocks; torch's output of
the same call must equal it (the shared self-check compares the two, see
`activations.Trace.reference_outputs`). NaN marks a place torch gives no
output for: masked steps of a packed sequence, and, for the lower layers
of a stacked `nn.LSTM` / `nn.GRU` (whose outputs torch keeps to itself),
every step but the one holding the layer's final state `h_n`.
"""

import dataclasses

import numpy as np
from torch import nn

from tb_lstm_gates.torch.cells import numpy_copy


def rnn(module, pairs, output, packed, unbatched):
    """`pairs` (`[(cell, Trace)]` of one `nn.LSTM` / `nn.GRU` call) with `reference_outputs` from `output`.

    Args:
      module: the `nn.LSTM` / `nn.GRU`.
      pairs: `[(TorchCell, Trace)]` of that call, every layer and direction.
      output: what its `forward` returned, `(output, h_n)` or `(output, (h_n, c_n))`.
      packed: whether the input was a `PackedSequence`.
      unbatched: whether the input was unbatched `(time, features)`.
    """
    sequence, hidden = output
    h_n = hidden[0] if isinstance(hidden, tuple) else hidden
    if packed:
        sequence = nn.utils.rnn.pad_packed_sequence(sequence, batch_first=True)[0]
    elif unbatched:
        sequence, h_n = sequence[None], h_n[:, None]
    elif not module.batch_first:
        sequence = sequence.transpose(0, 1)
    sequence, h_n = numpy_copy(sequence), numpy_copy(h_n)
    directions = 2 if module.bidirectional else 1
    done = []
    for cell, trace in pairs:
        units = trace.outputs.shape[-1]
        valid = trace.valid
        if cell.index == module.num_layers - 1:
            half = sequence[..., units * int(cell.reverse) : units * (int(cell.reverse) + 1)]
            reference = np.where(valid[..., None], half, np.nan)
            if cell.reverse:
                reference = reference[:, ::-1]
        else:
            reference = np.full(trace.outputs.shape, np.nan, trace.outputs.dtype)
            final = h_n[cell.index * directions + int(cell.reverse)]
            time = valid.shape[1]
            for b in np.flatnonzero(valid.any(axis=1)):
                steps = np.flatnonzero(valid[b])
                # The forward direction ends on the last valid step; the reverse one on the
                # first, which its reversed outputs hold at `time - 1 - first`.
                reference[b, time - 1 - steps[0] if cell.reverse else steps[-1]] = final[b]
        done.append((cell, _with(trace, reference)))
    return done


def cell(trace, output, unbatched):
    """`trace` (one call of an `nn.LSTMCell` / `nn.GRUCell`) with `reference_outputs`: the h it returned."""
    h = numpy_copy(output[0] if isinstance(output, tuple) else output)
    return _with(trace, (h[None] if unbatched else h)[:, None])


def _with(trace, reference):
    return dataclasses.replace(trace, reference_outputs=np.ascontiguousarray(reference, trace.outputs.dtype))
