"""The README's PyTorch examples run as written."""

import os
import re
import subprocess
import sys

import pytest

from tb_lstm_gates.logs import reader

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def pytorch_examples():
    text = open(README, encoding="utf-8").read()
    section = text.split("\n## PyTorch\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_section_has_a_training_loop_and_a_lightning_example():
    examples = pytorch_examples()
    assert len(examples) == 2
    assert "GateLogger" in examples[0] and "LSTMGatesCallback" in examples[1]


@pytest.mark.parametrize("index, run", [(0, "logs/torch_run"), (1, "lightning_logs/version_0")])
def test_example_runs_as_written_and_logs(tmp_path, index, run):
    result = subprocess.run(
        [sys.executable, "-c", pytorch_examples()[index]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = reader.load(tmp_path / run)
    assert {r.step for r in records} == {0, 1, 2, 3}
    assert any(r.stat == "act_mean" for r in records)
