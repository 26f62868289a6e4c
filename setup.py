"""Packaging for tb-lstm-gates."""

import setuptools

setuptools.setup(
    name="tb-lstm-gates",
    version="0.1.0",
    description="Per-gate views of LSTM and GRU weights in TensorBoard: a Keras callback, "
    "a TF1 session hook, a checkpoint importer, gate-wise regularizers and an LSTM Gates tab.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["tb_lstm_gates", "tb_lstm_gates.*"]),
    package_data={"tb_lstm_gates": ["plugin/static/*", "plugin/static/**/*", "plugin/http_api.md"]},
    install_requires=["tensorboard>=2.21", "numpy", "werkzeug"],
    extras_require={
        "tensorflow": ["tensorflow>=2.16"],
        "tf1": ["tensorflow>=2.16", "tf-keras"],
        "test": [
            "tensorflow>=2.16",
            "tf-keras",
            "pytest",
            "pytest-timeout",
            "hypothesis",
            "playwright",
        ],
    },
    entry_points={
        "console_scripts": ["tb-lstm-gates = tb_lstm_gates.cli:main"],
        "tensorboard_plugins": ["lstm_gates = tb_lstm_gates.plugin.loader:LSTMGatesLoader"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
