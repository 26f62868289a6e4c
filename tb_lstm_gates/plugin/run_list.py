"""The `runs` route's answer: every run with LSTM Gates data, its layers and what each holds."""

from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import unpack


def run_list(listed):
    """`{"runs": [...], "contract": ...}` of the `Listed` time series `listed` (see `Store.index`)."""
    runs = {}
    for s in listed:
        parsed = s.parsed
        if parsed.content.stride != 1:
            continue  # copies of points of a stride-1 series
        run = runs.setdefault(
            s.run,
            {
                "run": s.run,
                "layers": {},
                "regularization": False,
                "probe_tokens": False,
                "step_units": set(),
            },
        )
        run["step_units"].add(parsed.content.step_unit)
        if metadata.PENALTY in parsed.by_stat:
            run["regularization"] = True
        if metadata.PROBE_TOKENS in parsed.by_stat:
            run["probe_tokens"] = True
        if parsed.cell == metadata.MODEL_CELL:
            continue
        _add_layer(run["layers"], parsed)
    for run in runs.values():
        # In the model's order where the writer recorded it, else (older logs) by name.
        layers = sorted(
            run["layers"].values(),
            key=lambda layer: (layer["index"] is None, layer["index"] or 0, layer["layer"]),
        )
        for layer in layers:
            layer["parts"] = unpack.canonical(layer["parts"], metadata.PARTS)
            layer["gates"] = unpack.canonical(layer["gates"], unpack.CANONICAL_GATES)
            layer["stats"] = unpack.canonical(layer["stats"], unpack.CANONICAL_STATS)
        run["layers"] = layers
        _name_step_units(run)
    return {"runs": [runs[name] for name in sorted(runs)], "contract": metadata.contract()}


def _add_layer(layers, parsed):
    """Adds what the `Parsed` content `parsed` holds to its layer's entry of `layers`."""
    layer = layers.setdefault(
        parsed.layer,
        {
            "layer": parsed.layer,
            "cell": parsed.cell,
            "parts": set(),
            "gates": set(),
            "stats": set(),
            "histograms": False,
            "activation_maps": False,
            "unit_saturation": False,
            "probe_sequences": False,
            "penalties": False,
            "index": None,
            "heads": None,
            "step_units": set(),
            # {part: origin} of weights that are not plain parameters (see `logs.origins`).
            "origins": {},
        },
    )
    layer["origins"].update(parsed.content.origins or {})
    # xLSTM layers: {"count": heads, "head": k or None}, for the tab's head selector.
    layer["heads"] = layer["heads"] or parsed.content.heads
    index = parsed.content.index
    if index is not None and (layer["index"] is None or index < layer["index"]):
        layer["index"] = index
    layer["parts"] |= parsed.parts
    layer["gates"] |= parsed.gates
    layer["stats"] |= parsed.stats
    layer["histograms"] |= metadata.HISTOGRAM in parsed.by_stat
    layer["activation_maps"] |= metadata.ACTIVATION_MAP in parsed.by_stat
    layer["unit_saturation"] |= metadata.UNIT_SATURATION in parsed.by_stat
    layer["probe_sequences"] |= metadata.PROBE_SEQUENCES in parsed.by_stat
    layer["penalties"] |= metadata.PENALTY in parsed.by_stat
    layer["step_units"].add(parsed.content.step_unit)


def _name_step_units(run):
    """Replaces the `step_units` sets of `run` and of its layers with one `step_unit` each.

    A run or layer whose series disagree says `step`: the tab then claims
    no unit it cannot back.
    """
    for holder in [run] + run["layers"]:
        found = holder.pop("step_units")
        holder["step_unit"] = found.pop() if len(found) == 1 else metadata.DEFAULT_STEP_UNIT
