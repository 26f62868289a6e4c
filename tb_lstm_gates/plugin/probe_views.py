"""The probe's routes' answers: activation maps, probe sequences and unit saturation.

Functions of a `store.Store` and plain values, returning plain data; the
routes of `plugin.py` call them.
"""

import numpy as np
from tensorboard import errors

from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import unpack


def activation_map(store, ctx, experiment, run, layer, gate, step=None):
    """One gate's activations on the probe's first sequence at `step` (None: the last step)."""
    datums = unpack.in_step_order(
        store.block_tensors(ctx, experiment, run, layer, metadata.ACTIVATION_MAP, gate=gate)
    )
    steps, step, datum = _at_step(datums, step, "activation map", layer, gate)
    values = np.atleast_2d(np.asarray(datum.value, dtype=np.float64))
    tokens = probe_tokens(store, ctx, experiment, run)
    return {
        "run": run,
        "layer": layer,
        "gate": gate,
        "steps": steps,
        "step": step,
        "wall_time": datum.wall_time,
        "time_steps": values.shape[0],
        "units": values.shape[1],
        "values": [[unpack.finite(x) for x in row] for row in values.tolist()],
        "tokens": tokens[0] if tokens else None,
    }


def probe_sequences(store, ctx, experiment, run, layer, gate, step=None):
    """One gate's (or the cell state's) activations on the probe's first sequences at `step` (None: the last).

    Logs from before the probe's sequences serve the activation map, the
    first sequence's gates, as one sequence.
    """
    try:
        datums = store.block_tensors(ctx, experiment, run, layer, metadata.PROBE_SEQUENCES, gate=gate)
        source = metadata.PROBE_SEQUENCES
    except errors.NotFoundError:
        datums = store.block_tensors(ctx, experiment, run, layer, metadata.ACTIVATION_MAP, gate=gate)
        source = metadata.ACTIVATION_MAP
    datums = unpack.in_step_order(datums)
    steps, step, datum = _at_step(datums, step, "probe sequences", layer, gate)
    values = np.asarray(datum.value, dtype=np.float64)
    values = values.reshape((1,) * (3 - values.ndim) + values.shape)
    return {
        "run": run,
        "layer": layer,
        "gate": gate,
        "source": source,
        "steps": steps,
        "step": step,
        "wall_time": datum.wall_time,
        "sequences": values.shape[0],
        "time_steps": values.shape[1],
        "units": values.shape[2],
        "values": [[[unpack.finite(x) for x in row] for row in sequence] for sequence in values.tolist()],
        "tokens": probe_tokens(store, ctx, experiment, run),
        "unit_saturation": _unit_saturation_at(store, ctx, experiment, run, layer, gate, step),
    }


def unit_saturation(store, ctx, experiment, layer, gate, runs=None, step=None):
    """Per unit of one gate, the fractions left- and right-saturated, per run.

    Each run holding the series gives its points at its last step at or
    before `step` (None: its last step), so runs logged at different
    steps line up; runs without a step that early are left out.
    """
    listed = store.index(ctx, experiment)
    runs = unpack.select_runs(listed, runs)
    in_layer = [s for s in listed if s.run in runs and s.parsed.layer == layer]
    selected = [s for s in unpack.block_series(in_layer, metadata.UNIT_SATURATION) if s.block.gate == gate]
    if not selected:
        raise errors.NotFoundError(
            "gate %r of layer %r has no unit_saturation in the selected runs" % (gate, layer)
        )
    series = []
    # Logs written before `functions` name none: the tab reads the gate's sigmoid or tanh bounds.
    functions = [f[gate] for f in (s.parsed.content.functions for s in in_layer) if f and gate in f]
    by_run = store.tensor_points(ctx, experiment, selected)
    for run in sorted(by_run):
        points = unpack.in_step_order(by_run[run])
        chosen = [p for p in points if step is None or p.step <= step]
        if not chosen:
            continue
        series.append(
            {
                "run": run,
                "steps": [p.step for p in points],
                "step": chosen[-1].step,
                "units": saturation_pairs(chosen[-1].value),
            }
        )
    return {"layer": layer, "gate": gate, "function": functions[0] if functions else None, "runs": series}


def _unit_saturation_at(store, ctx, experiment, run, layer, gate, step):
    """A gate's logged `[low, high]` saturated fractions per unit at `step`, or None (a state, older logs).

    The Text view orders units by these, so it counts saturation as the
    probe logged it: by the activation's bounds, or its slope where it
    has none (relu and the like).
    """
    try:
        datums = store.block_tensors(ctx, experiment, run, layer, metadata.UNIT_SATURATION, gate=gate)
    except errors.NotFoundError:
        return None
    at_step = [d for d in datums if d.step == step]
    if not at_step:
        return None
    return saturation_pairs(at_step[-1].value)


def probe_tokens(store, ctx, experiment, run):
    """The run's probe tokens (a list of lists of strings, the last written), or None."""
    try:
        datums = store.block_tensors(ctx, experiment, run, metadata.MODEL_LAYER, metadata.PROBE_TOKENS)
    except errors.NotFoundError:
        return None
    datums = unpack.in_step_order(datums)
    return metadata.parse_tokens(datums[-1].value) if datums else None


def saturation_pairs(value):
    """A `unit_saturation` tensor as JSON: `[left, right]` per unit, null where NaN."""
    values = np.asarray(value, dtype=np.float64).reshape(-1, 2)
    return [[unpack.finite(left), unpack.finite(right)] for left, right in values.tolist()]


def _at_step(datums, step, what, layer, gate):
    """`(steps, step, datum)`: the steps of `datums` (in step order), the one asked (None: the last) and its datum."""
    by_step = {d.step: d for d in datums}
    steps = [d.step for d in datums]
    if step is None:
        step = steps[-1]
    elif step not in by_step:
        raise errors.NotFoundError("gate %r of layer %r has no %s at step %d" % (gate, layer, what, step))
    return steps, step, by_step[step]
