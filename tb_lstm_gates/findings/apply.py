"""Applies every rule to logged series and orders the findings."""

import collections
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tb_lstm_gates.findings import exponential
from tb_lstm_gates.findings.checks import CHECKS, Index
from tb_lstm_gates.findings.rules import (
    RULES,
    RULES_BY_NAME,
    SEVERITIES,
    Series,
    default_settings,
)
from tb_lstm_gates.logs import metadata

if TYPE_CHECKING:  # the reader only names the records' type; the plugin never loads it
    from tb_lstm_gates.logs.reader import Record


def series_from_records(records):
    """The scalar series in `load()`'s records, as `Series`; histograms and maps are left out."""
    points = collections.defaultdict(dict)
    cells = {}
    for r in records:
        if r.stat in metadata.TENSOR_STATS:
            continue
        key = (r.run, r.layer, r.part, r.gate, r.stat)
        points[key][r.step] = r.value
        cells[key] = r.cell
    series = []
    for key, by_step in points.items():
        steps = np.array(sorted(by_step), dtype=np.int64)
        values = np.array([by_step[s] for s in steps.tolist()], dtype=np.float64)
        run, layer, part, gate, stat = key
        series.append(Series(run, layer, cells[key], part, gate, stat, steps, values))
    return series


def check(records: Iterable["Record"], settings: Mapping[tuple[str, str], float] | None = None) -> list[dict]:
    """The findings of `load()`'s records; see `check_series`."""
    return check_series(series_from_records(records), settings)


def check_series(series, settings=None):
    """Applies every rule to `series` (an iterable of `Series`).

    Args:
      settings: threshold overrides as `parse_settings` returns them.

    Returns:
      list of finding dicts, sorted by run, then severity (errors first),
      step, layer, block and rule.
    """
    thresholds = {**default_settings(), **(settings or {})}
    index = Index(series)
    findings = []
    for rule in RULES:
        limits = {name: thresholds[rule.name, name] for name in rule.thresholds}
        findings += {**CHECKS, **exponential.CHECKS}[rule.name](rule, index, limits)
    order = {name: k for k, name in enumerate(RULES_BY_NAME)}
    findings.sort(
        key=lambda f: (
            f["run"],
            -SEVERITIES.index(f["severity"]),
            f["step"],
            f["layer"],
            _position(f["part"], metadata.PARTS),
            _position(f["gate"], metadata.LSTM_GATES + metadata.GRU_GATES),
            order[f["rule"]],
        )
    )
    return findings


def at_or_above(findings: Iterable[Any], severity: str) -> list[Any]:
    """The findings whose severity is `severity` or worse."""
    level = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f["severity"]) >= level]


def counts(findings):
    """`{run: {severity: count}}`, every severity present for every run with findings."""
    result = {}
    for f in findings:
        result.setdefault(f["run"], dict.fromkeys(SEVERITIES, 0))[f["severity"]] += 1
    return result


def _position(name, canonical):
    return (canonical.index(name) if name in canonical else len(canonical), name)
