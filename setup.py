"""Packaging for tb-lstm-gates.

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


setuptools.setup(
    name="tb-lstm-gates",
    version="0.1.0",
    description="Per-gate views of LSTM and GRU weights in TensorBoard: a Keras callback, "
    "a TF1 session hook, a PyTorch logger, a checkpoint importer, gate-wise regularizers and an "
    "LSTM Gates tab.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["tb_lstm_gates", "tb_lstm_gates.*"]),
    package_data={"tb_lstm_gates": ["plugin/static/*", "plugin/static/**/*", "plugin/http_api.md"]},
    # google-crc32c: the compiled CRC32C that frames event files without TensorFlow.
    install_requires=["tensorboard>=2.21", "numpy", "werkzeug", "google-crc32c>=1.5"],
    extras_require={
        "tensorflow": ["tensorflow>=2.16"],
        "tf1": ["tensorflow>=2.16", "tf-keras"],
        "torch": ["torch>=2.1"],
        "lightning": ["torch>=2.1", "lightning>=2.2"],
        "jax": ["jax"],
        "test": [
            "tensorflow>=2.16",
            "tf-keras",
            # Pinned so that CI takes the CPU wheel the machine keeps (a plain
            # `torch` from the registry pulls several GB of CUDA wheels).
            "torch==2.13.0",
            "lightning>=2.2",
            "jax",
            "pytest",
            "pytest-timeout",
            "hypothesis",
            "playwright",
            "ruff",
        ],
    },
    entry_points={
        "console_scripts": ["tb-lstm-gates = tb_lstm_gates.cli:main"],
        "tensorboard_plugins": ["lstm_gates = tb_lstm_gates.plugin.loader:LSTMGatesLoader"],
    },
    cmdclass={"build_py": BuildPyWithFrontend},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
