"""Findings as text, Markdown or JSON, for `tb-lstm-gates report`."""

import json
import math
from collections.abc import Sequence
from typing import Any

from tb_lstm_gates.findings.apply import counts

FORMATS = ("text", "markdown", "json")


def to_json(findings):
    """`{"findings": [...]}` as JSON text; non-finite values as null."""
    clean = [dict(f, value=f["value"] if math.isfinite(f["value"]) else None) for f in findings]
    return json.dumps({"findings": clean}, indent=2, allow_nan=False)


def to_text(findings):
    """One block of lines per run: `SEVERITY  layer part/gate  rule at step S (value V)` and the message."""
    if not findings:
        return "no findings"
    lines = []
    run = None
    for f in findings:
        if f["run"] != run:
            run = f["run"]
            if lines:
                lines.append("")
            lines.append("run %s: %s" % (run, _count_text(counts(findings)[run])))
        lines.append(
            "  %-7s %s %s/%s  %s at step %d (value %.4g)"
            % (f["severity"].upper(), f["layer"], f["part"], f["gate"], f["rule"], f["step"], f["value"])
        )
        lines.append("          " + f["message"])
    return "\n".join(lines)


def to_markdown(findings):
    """A Markdown table of the findings, with a count line per run."""
    if not findings:
        return "No findings."
    lines = ["%s: %s  " % (_md(run), _count_text(c)) for run, c in counts(findings).items()]
    lines += ["", "| severity | run | layer | block | rule | step | value | message |", "|---" * 8 + "|"]
    for f in findings:
        lines.append(
            "| %s | %s | %s | %s/%s | %s | %d | %.4g | %s |"
            % (
                f["severity"],
                _md(f["run"]),
                _md(f["layer"]),
                f["part"],
                f["gate"],
                f["rule"],
                f["step"],
                f["value"],
                _md(f["message"]),
            )
        )
    return "\n".join(lines)


def format_findings(findings: Sequence[Any], fmt: str) -> str:
    """`findings` as `text`, `markdown` or `json`."""
    return {"text": to_text, "markdown": to_markdown, "json": to_json}[fmt](findings)


def _count_text(by_severity):
    return ", ".join(
        "%d %s%s" % (n, s, "" if n == 1 else "s") for s, n in reversed(list(by_severity.items())) if n
    )


def _md(text):
    return str(text).replace("|", "\\|")
