"""Numpy reference steps of recurrent cells, built only from split gate blocks.

Tests compare these against one step of the framework's own cells, which is
what proves a layout: shapes alone pass for a wrong gate order.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step(x, h, c, w, u, b, project=None, peephole=None):
    """One LSTM step. w, u, b: {gate: block}, matmul-ready (x @ w[g])."""
    z = {g: x @ w[g] + h @ u[g] + b[g] for g in ("input", "forget", "cell", "output")}
    peephole = peephole or {}
    i = sigmoid(z["input"] + peephole.get("input", 0) * c)
    f = sigmoid(z["forget"] + peephole.get("forget", 0) * c)
    c_new = f * c + i * np.tanh(z["cell"])
    o = sigmoid(z["output"] + peephole.get("output", 0) * c_new)
    h_new = o * np.tanh(c_new)
    if project is not None:
        h_new = h_new @ project
    return h_new, c_new


def gru_step(x, h, w, u, b_in, b_rec, reset_after):
    """One Keras GRU step; b_rec is None when reset_after is False."""
    xz = {g: x @ w[g] + b_in[g] for g in ("update", "reset", "candidate")}
    if reset_after:
        hz = {g: h @ u[g] + b_rec[g] for g in ("update", "reset", "candidate")}
        z = sigmoid(xz["update"] + hz["update"])
        r = sigmoid(xz["reset"] + hz["reset"])
        candidate = np.tanh(xz["candidate"] + r * hz["candidate"])
    else:
        z = sigmoid(xz["update"] + h @ u["update"])
        r = sigmoid(xz["reset"] + h @ u["reset"])
        candidate = np.tanh(xz["candidate"] + (r * h) @ u["candidate"])
    return z * h + (1 - z) * candidate


def conv(x, kernel, padding):
    """Stride-1 N-D cross-correlation, channels last, like Keras ConvND.

    x: (batch, *spatial, in); kernel: (*ks, in, out).
    """
    ks = kernel.shape[:-2]
    spatial = tuple(range(1, 1 + len(ks)))
    if padding == "same":
        pads = [(0, 0)] + [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in ks] + [(0, 0)]
        x = np.pad(x, pads)
    windows = np.lib.stride_tricks.sliding_window_view(x, ks, axis=spatial)
    # windows: (batch, *out, in, *ks) -> contract in and ks with the kernel.
    n = len(ks)
    letters = "abcdefgh"[:n]
    subs = "z%sy%s,%syo->z%so" % (
        "".join(c.upper() for c in letters),
        letters,
        letters,
        "".join(c.upper() for c in letters),
    )
    return np.einsum(subs, windows, kernel)


def conv_lstm_step(x, h, c, w, u, b, padding):
    """One ConvLSTM step; w, u: {gate: (*ks, in, filters)} blocks."""
    z = {
        g: conv(x, w[g], padding) + conv(h, u[g], "same") + b[g]
        for g in ("input", "forget", "cell", "output")
    }
    i, f, o = sigmoid(z["input"]), sigmoid(z["forget"]), sigmoid(z["output"])
    c_new = f * c + i * np.tanh(z["cell"])
    return o * np.tanh(c_new), c_new
