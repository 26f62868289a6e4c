"""The one packaging step pyproject.toml cannot declare: building the tab.

Building the package also builds the LSTM Gates tab: `frontend/` is bundled by
npm into `tb_lstm_gates/plugin/static/` when the bundle is missing or older than
its sources, so `pip install .` and `pip install -e .` from a checkout give a
working tab. Released wheels already contain the bundle and need no Node.js.
"""

import os
import shutil
import subprocess

import setuptools
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
FRONTEND = os.path.join(HERE, "frontend")
BUNDLE = os.path.join(HERE, "tb_lstm_gates", "plugin", "static", "index.js")


def _newest_source_mtime():
    paths = [os.path.join(FRONTEND, n) for n in ("package.json", "package-lock.json", "build.mjs")]
    for folder, _, files in os.walk(os.path.join(FRONTEND, "src")):
        paths.extend(os.path.join(folder, f) for f in files)
    return max(os.path.getmtime(p) for p in paths if os.path.exists(p))


def build_frontend():
    """Runs `npm ci` and `npm run build` in frontend/ if the bundle is missing or stale."""
    if not os.path.isdir(FRONTEND):
        if os.path.exists(BUNDLE):
            return  # a source distribution with the bundle already built
        raise RuntimeError("tb-lstm-gates: neither frontend/ nor a built %s was found" % BUNDLE)
    if os.path.exists(BUNDLE) and os.path.getmtime(BUNDLE) >= _newest_source_mtime():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "tb-lstm-gates: building the LSTM Gates tab from source needs Node.js (18 or "
            "newer) and npm on PATH; install them from https://nodejs.org and retry."
        )
    install = "ci" if os.path.exists(os.path.join(FRONTEND, "package-lock.json")) else "install"
    for args in ([install], ["run", "build"]):
        print("tb-lstm-gates: npm %s (in frontend/)" % " ".join(args), flush=True)
        subprocess.run([npm, *args], cwd=FRONTEND, check=True)


class BuildPyWithFrontend(build_py):
    """`build_py` that first builds the tab; editable installs run it too."""

    def run(self):
        build_frontend()
        super().run()


# Every other piece of metadata is in pyproject.toml.
setuptools.setup(cmdclass={"build_py": BuildPyWithFrontend})
