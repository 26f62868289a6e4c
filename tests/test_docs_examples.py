"""The README's and the documentation site's examples run as written, and their links resolve.

Each page's ```python blocks run in order as one script (a page reads like a
notebook: later blocks use what earlier ones made), in a fresh process and
an empty directory. A block that cannot run on its own (it needs a session
or a model the reader has) is preceded by `<!-- not run: why -->`; a block
that needs a process of its own (TF1 cells need `TF_USE_LEGACY_KERAS=1`
before TensorFlow is imported) by `<!-- run alone -->`; every other block
runs.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tb_lstm_gates.logs import reader

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(<!-- (not run: [^>]+|run alone) -->\s*\n)?```python\n(.*?)```", re.S)


# The steps of the runs that a page's script `index` logs with a probe.
EXPECTED_RUNS = {
    ("README.md", 0): {"logs/keras_run/train": set(range(6)), "logs/torch_run": set(range(4))},
    ("docs/getting-started/pytorch.md", 0): {"logs/torch_run": set(range(4))},
    ("docs/getting-started/lightning.md", 0): {"lightning_logs/version_0": set(range(4))},
    ("docs/getting-started/tf1.md", 1): {"logs/doc_word": {0, 20, 40, 60}},
}


def blocks(page):
    """(code, marker or None) for each python block of `page`."""
    return [(m.group(3), m.group(2)) for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


def scripts(page):
    """The scripts a page's examples make: its unmarked blocks in order, then each block run alone."""
    found = blocks(page)
    together = "\n".join(code for code, marker in found if marker is None)
    alone = [code for code, marker in found if marker == "run alone"]
    return ([together] if together else []) + alone


def examples():
    return [(page, i) for page in PAGES for i in range(len(scripts(page)))]


def test_the_pages_with_examples_are_the_ones_users_start_from():
    names = {str(page.relative_to(ROOT)) for page, _ in examples()}
    assert {
        "README.md",
        "docs/getting-started/keras.md",
        "docs/getting-started/pytorch.md",
        "docs/getting-started/lightning.md",
        "docs/getting-started/tf1.md",
        "docs/regularization.md",
    } <= names


@pytest.mark.parametrize(
    "page, index", examples(), ids=lambda v: str(v.relative_to(ROOT)) if hasattr(v, "parts") else v
)
def test_page_examples_run_as_written(page, index, tmp_path):
    script = scripts(page)[index]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Whatever a page logged reads back; the runs users copy first log every step, probe included.
    for folder in ("logs", "lightning_logs"):
        if (tmp_path / folder).exists():
            assert reader.load(tmp_path / folder), "%s wrote no records under %s" % (page.name, folder)
    for run, steps in EXPECTED_RUNS.get((str(page.relative_to(ROOT)), index), {}).items():
        records = reader.load(tmp_path / run)
        assert {r.step for r in records} == steps, run
        assert any(r.stat == "act_mean" for r in records), run


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "CHANGELOG.md"], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://|^#|^mailto:", target):
            continue
        assert (page.parent / target.split("#")[0]).exists(), "%s links to %s, which is missing" % (
            page.name,
            target,
        )


def test_the_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: no broken link, anchor or API reference anywhere in the site."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "keras" / "index.html").read_text(encoding="utf-8")
    assert "LSTMGatesCallback" in api and "update_freq" in api
