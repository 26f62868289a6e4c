"""Where a layer's weights come from: written in its statistics' metadata, read back by `weight_origins` and the tab.

A PyTorch weight may not be a plain parameter: behind weight drop the
logger logs the raw parameter, behind a parametrization the effective
weight (see `tb_lstm_gates.torch.weights`). The writer records, per part of
the layer (`recurrent`, `input`, ...), the origin of every weight that is
not a plain parameter, in the `origins` field of the layer's
`STATS_KIND` metadata: `{"recurrent": "weight drop: weight_hh_l0_raw"}`.
A part that is not named, and every layer of a log written before the
field or by the Keras and TF1 loggers, is a plain parameter (`PARAMETER`).
"""

import os
from collections.abc import Mapping
from typing import Any

from tb_lstm_gates.logs import metadata, reader, summary

PARAMETER = "parameter"


def of_parts(layout: Any, origins: Mapping[str, str]) -> dict[str, str]:
    """`{part: origin}` of a layer's weights that are not plain parameters.

    Args:
      layout: the layer's `layouts.Layout`.
      origins: mapping from the layout's weight names to their origins.
    """
    parts = {}
    for name, pieces in layout.weights.items():
        origin = origins.get(name, PARAMETER)
        if origin != PARAMETER:
            for piece in pieces:
                parts[piece.part] = origin
    return parts


def weight_origins(logdir: str | os.PathLike[str]) -> dict[str, dict[str, dict[str, str]]]:
    """`{run: {layer: {part: origin}}}` of the layers whose weights are not all plain parameters.

    Runs are named as `load()` names them; a layer absent, or a part
    absent from its mapping, is a plain parameter.
    """
    logdir = str(logdir)
    gfile = summary.gfile(logdir)
    if not gfile.isdir(logdir):
        raise FileNotFoundError("no log directory at %s" % logdir)
    found: dict[str, dict[str, dict[str, str]]] = {}
    for run, paths in reader._runs(gfile, logdir):
        for path in paths:
            for event in summary.read_events(path):
                for value in event.summary.value:
                    plugin = value.metadata.plugin_data
                    if plugin.plugin_name != metadata.PLUGIN_NAME or not plugin.content:
                        continue
                    try:
                        content = metadata.parse_plugin_content(plugin.content)
                    except ValueError:
                        continue
                    if content.origins:
                        found.setdefault(run, {}).setdefault(content.blocks[0].layer, {}).update(
                            content.origins
                        )
    return found
