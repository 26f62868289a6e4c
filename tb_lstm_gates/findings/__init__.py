"""Gate-health findings: rules that read logged statistics and say what is wrong.

Pure numpy over the values `tb_lstm_gates.load()` returns (or the same
series read through TensorBoard's data provider, for the tab), so the
`tb-lstm-gates report` command and the plugin's `findings` route apply the
same rules. Imports neither TensorFlow nor Keras.

A finding is a dict with `run`, `layer`, `part`, `gate` (the block, or
`model`/`total`/`total` for the model's losses), `rule`, `severity` (`info`,
`warning`, `error`), `step` (the first step where the rule holds), `value`
(the rule's measure at that step, see each rule), `stat` (the logged
statistic to chart to see it) and `message` (the likely cause and what to
try).

Two kinds of rules: event rules fire at the first step where their
condition holds (a NaN, a jump); state rules describe how the run stands
now, and fire when their condition holds at each of the series' last
`window` logged steps, with `step` the first of the stretch of steps,
ending at the last one, where it holds.

Modules: `rules` (each rule, its thresholds and their overrides), `checks`
(one check per rule), `apply` (applies them and orders the findings) and
`report` (text, Markdown and JSON).
"""

from tb_lstm_gates.findings.apply import (
    at_or_above,
    check,
    check_series,
    counts,
    series_from_records,
)
from tb_lstm_gates.findings.report import (
    FORMATS,
    format_findings,
    to_json,
    to_markdown,
    to_text,
)
from tb_lstm_gates.findings.rules import (
    RULES,
    RULES_BY_NAME,
    SEVERITIES,
    STATS_READ,
    Rule,
    Series,
    default_settings,
    parse_settings,
    setting_keys,
)

__all__ = [
    "FORMATS",
    "RULES",
    "RULES_BY_NAME",
    "SEVERITIES",
    "STATS_READ",
    "Rule",
    "Series",
    "at_or_above",
    "check",
    "check_series",
    "counts",
    "default_settings",
    "format_findings",
    "parse_settings",
    "series_from_records",
    "setting_keys",
    "to_json",
    "to_markdown",
    "to_text",
]
