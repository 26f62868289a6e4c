"""Parsing a summary's `plugin_data.content` into a `kinds.Content`: what every reader of the contract calls."""

import json
from collections.abc import Iterable

from tb_lstm_gates.core.names import ACTIVATION, HISTOGRAM, PROBE_SEQUENCES, PROBE_TOKENS, TOTAL
from tb_lstm_gates.logs.kinds import (
    DEFAULT_STEP_UNIT,
    GATE_KINDS,
    HISTOGRAMS_KIND,
    KIND_VERSIONS,
    PROBE_SEQUENCES_KIND,
    PROBE_TOKENS_KIND,
    PROTOCOL_VERSION,
    STATS_KIND,
    STEP_UNITS,
    STRIDES,
    Block,
    Content,
    NewerVersionError,
)


def parse_plugin_content(content: bytes | str) -> Content:
    """The block series a summary holds, from its `plugin_data.content`.

    Returns:
      a `Content`; version 1 holds one block (a float32 scalar, or a
      histogram or activation map tensor as it is).

    Raises:
      NewerVersionError: the content comes from a newer version of
        tb-lstm-gates than the one installed.
      ValueError: the content is not this plugin's JSON or lacks a field.
    """
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(content)
    except ValueError as e:
        raise ValueError("lstm_gates summary metadata is not JSON: %s" % e) from None
    if not isinstance(parsed, dict):
        raise ValueError("lstm_gates summary metadata is not a JSON object")
    version = parsed.get("version")
    if isinstance(version, int) and version > PROTOCOL_VERSION:
        raise NewerVersionError(
            "lstm_gates summary metadata has version %d; this tb-lstm-gates "
            "reads up to version %d: upgrade tb-lstm-gates" % (version, PROTOCOL_VERSION)
        )
    if not isinstance(version, int):
        raise ValueError(
            "lstm_gates summary metadata has version %r; this tb-lstm-gates "
            "reads up to version %d: upgrade tb-lstm-gates" % (version, PROTOCOL_VERSION)
        )
    if version < 2:
        _require(parsed, ("layer", "cell", "part", "gate", "stat"), str)
        block = Block(parsed["layer"], parsed["cell"], parsed["part"], parsed["gate"], parsed["stat"], None)
        return Content(None, (block,), (), 1)
    _require(parsed, ("layer", "cell", "kind"), str)
    kind, layer, cell = parsed["kind"], parsed["layer"], parsed["cell"]
    names = ("parts", "gates", "stats") if kind == STATS_KIND else ("parts", "gates")
    if kind not in (STATS_KIND, HISTOGRAMS_KIND) + tuple(GATE_KINDS) + tuple(KIND_VERSIONS):
        raise ValueError("lstm_gates summary metadata has unknown kind %r" % (kind,))
    if kind in KIND_VERSIONS:
        kind_version = parsed.get("kind_version")
        if not isinstance(kind_version, int) or kind_version > KIND_VERSIONS[kind]:
            raise NewerVersionError(
                "lstm_gates %s summary has kind_version %r; this tb-lstm-gates reads up to %d: upgrade "
                "tb-lstm-gates" % (kind, kind_version, KIND_VERSIONS[kind])
            )
    _require(parsed, names, list)
    if not all(isinstance(name, str) for field in names for name in parsed[field]):
        raise ValueError("lstm_gates summary metadata has non-string names")
    parts, gates = parsed["parts"], parsed["gates"]
    stride = parsed.get("stride", 1)
    if stride != 1 and stride not in STRIDES:
        raise ValueError("lstm_gates summary metadata has stride %r, not 1 or one of %s" % (stride, STRIDES))
    shape: tuple[int, ...]
    blocks: Iterable[Block]
    if kind == STATS_KIND:
        shape = (len(parts), len(parsed["stats"]), len(gates))
        missing = _missing(parsed.get("missing", []), shape)
        blocks = (
            Block(layer, cell, part, gate, stat, (p, s, g))
            for p, part in enumerate(parts)
            for s, stat in enumerate(parsed["stats"])
            if (p, s) not in missing
            for g, gate in enumerate(gates)
        )
    elif kind == HISTOGRAMS_KIND:
        shape = (len(parts), len(gates))
        blocks = (
            Block(layer, cell, part, gate, HISTOGRAM, (p, g))
            for p, part in enumerate(parts)
            for g, gate in enumerate(gates)
        )
    elif kind == PROBE_SEQUENCES_KIND:
        _require(parsed, ("state",), str)
        gates = gates + [parsed["state"]]
        shape = (len(gates),)
        blocks = (Block(layer, cell, ACTIVATION, gate, PROBE_SEQUENCES, g) for g, gate in enumerate(gates))
    elif kind == PROBE_TOKENS_KIND:
        shape = ()
        blocks = (Block(layer, cell, ACTIVATION, TOTAL, PROBE_TOKENS, ()),)
    else:
        shape = (len(gates),)
        blocks = (Block(layer, cell, ACTIVATION, gate, GATE_KINDS[kind], g) for g, gate in enumerate(gates))
    blocks = tuple(blocks)
    if not blocks:
        raise ValueError("lstm_gates summary metadata names no part, gate or statistic")
    # A unit this version does not know (a newer writer's) reads as unknown.
    step_unit = parsed.get("step_unit")
    index = parsed.get("index")
    index = index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else None
    functions = parsed.get("functions")
    if not (isinstance(functions, dict) and all(isinstance(f, str) for f in functions.values())):
        functions = None
    heads = parsed.get("heads")
    if not (isinstance(heads, dict) and isinstance(heads.get("count"), int)):
        heads = None
    origins = parsed.get("origins")
    if not (isinstance(origins, dict) and all(isinstance(o, str) for o in origins.values())):
        origins = None
    return Content(
        kind,
        blocks,
        shape,
        stride,
        step_unit if step_unit in STEP_UNITS else DEFAULT_STEP_UNIT,
        index,
        functions,
        heads,
        origins,
    )


def _missing(missing, shape):
    """The set of `(part index, stat index)` pairs of a STATS_KIND content's `missing`."""
    pairs = set()
    for pair in missing if isinstance(missing, list) else [None]:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) for i in pair)
            and 0 <= pair[0] < shape[0]
            and 0 <= pair[1] < shape[1]
        ):
            raise ValueError("lstm_gates summary metadata has a bad missing entry %r" % (pair,))
        pairs.add(tuple(pair))
    return pairs


def _require(parsed, fields, kind):
    missing = [k for k in fields if not isinstance(parsed.get(k), kind)]
    if missing:
        raise ValueError("lstm_gates summary metadata lacks %s" % ", ".join(missing))
