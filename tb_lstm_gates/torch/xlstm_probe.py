"""What an sLSTM layer's heads do on the probe: exponential gates, stabilizer and normalizer, per head.

`register` puts hooks on an `sLSTMLayer` that record, at every call, the
inputs of its gate projections (the layer's input, and the causal
convolution's activated output that feeds the input and forget gates) and
the package's own output of its sLSTM cell. `trace_calls` recomputes the
layer in numpy from the split blocks of every head (`xlstm.slstm_arrays`),
all heads at once as the package's vanilla pointwise function does
(`xlstm/blocks/slstm/src/vanilla/slstm.py`):

    m_t = max(i_t, log sigmoid(f_t) + m_{t-1})   (m_t = i_t while n is all 0)
    i'_t = min(exp(i_t - m_t), 1)   f'_t = min(exp(log sigmoid(f_t) + m_{t-1} - m_t), 1)
    c_t = f'_t c_{t-1} + i'_t tanh(z_t)   n_t = f'_t n_{t-1} + i'_t   h_t = sigmoid(o_t) c_t / n_t

Each head's `Trace` (cell `lstm`) has the gates `input`, `forget` (the
stabilized i' and f' the package multiplies with), `cell` (tanh z) and
`output`, then `stabilizer` (m) and `normalizer` (n) as two more rows;
`states` is c; `outputs` is h of that head and `reference_outputs` the
package's own h for the same calls, which the recomputation must equal.

Saturation of an exponential gate has no fixed bounds; its stand-ins:
- input gate, `saturated_high`: the input sets the stabilizer
  (`m_t = i_t`, so i' = 1): the new input
  outweighs all the memory;
- input gate, `saturated_low`: `exp(i_t - m_t)` underflows in float32
  (`i_t - m_t < log(float32 tiny)`, about -87.3): the stabilizer, not the
  input, sets the gate, and the input is lost entirely;
- forget gate (f' in [0, 1]), cell (tanh) and output (sigmoid): the usual
  bounds (`names.SATURATION_BOUNDS`);
- stabilizer and normalizer: never (they are states, not gates).
"""

from typing import Any

import numpy as np
import torch

from tb_lstm_gates.core import activations, names
from tb_lstm_gates.torch import xlstm

GATES = ("input", "forget", "cell", "output", "stabilizer", "normalizer")
FUNCTIONS = ("exp", "sigmoid", "tanh", "sigmoid", "identity", "identity")
# exp(x) of a float32 is 0 (or denormal) below this.
UNDERFLOW = float(np.log(np.finfo(np.float32).tiny))


def register(layer: Any, calls: list[dict[str, Any]]) -> list[Any]:
    """Hooks on an sLSTM layer appending one `{x, x_conv, reference}` per call to `calls`; returns the handles."""
    current: dict[str, Any] = {}

    def pre(mod: Any, args: Any, kwargs: Any) -> None:
        x = args[0] if args else kwargs["x"]
        if kwargs.get("slstm_state") is not None or len(args) > 2:
            raise ValueError(
                "tb-lstm-gates probes an sLSTM layer from a zero state only; the probe's forward passed slstm_state"
            )
        current.clear()
        current["x"] = x.detach().to("cpu", copy=True).double().numpy()

    def conv(mod: Any, args: Any, output: Any) -> None:
        current["x_conv"] = output.detach().to("cpu", copy=True).double().numpy()

    def cell(mod: Any, args: Any, output: Any) -> None:
        y = output[0]  # (batch, heads, time, head_dim): the cell's output_shape BNSH
        entry = dict(current)
        entry.setdefault("x_conv", entry["x"])
        entry["reference"] = y.detach().to("cpu", copy=True).float().numpy()
        calls.append(entry)

    handles = [layer.register_forward_pre_hook(pre, with_kwargs=True)]
    if layer.config.conv1d_kernel_size > 0:
        handles.append(layer.conv_act_fn.register_forward_hook(conv))
    handles.append(layer.slstm_cell.register_forward_hook(cell))
    return handles


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))
    return result


def recompute(
    per_head: list[dict[str, np.ndarray]], x: np.ndarray, x_conv: np.ndarray
) -> dict[str, np.ndarray]:
    """Runs an sLSTM layer's cell in numpy (float64) from its heads' blocks.

    Args:
      per_head: `xlstm.slstm_arrays(layer)`.
      x, x_conv: `(batch, time, heads * head_dim)`: the layer's input (for
        z and o) and its activated convolution (for i and f).

    Returns:
      dict of `(batch, time, heads, head_dim)` arrays: `pre` (gate
      pre-activations, with a gate axis before heads: `(batch, time, 4,
      heads, head_dim)`), `gates` (i', f', tanh z, sigmoid o, same shape),
      `h`, `c`, `n`, `m`, and `input_sets_m` (bool).
    """
    heads = len(per_head)
    d = per_head[0]["bias"].shape[0] // 4
    kernel = np.stack([a["kernel"].reshape(d, 4, d) for a in per_head]).astype(np.float64)
    recurrent = np.stack([a["recurrent_kernel"].reshape(d, 4, d) for a in per_head]).astype(np.float64)
    bias = np.stack([a["bias"].reshape(4, d) for a in per_head]).astype(np.float64)  # (heads, 4, d)
    b, t = x.shape[:2]
    xh = x.reshape(b, t, heads, d)
    xc = x_conv.reshape(b, t, heads, d)
    # Wx[b, t, gate, head, out]: i, f from the convolution, z, o from the input.
    wx_conv = np.einsum("bthi,higo->btgho", xc, kernel)
    wx = np.einsum("bthi,higo->btgho", xh, kernel)
    wx = np.concatenate([wx_conv[:, :, :2], wx[:, :, 2:]], axis=2)
    y = np.zeros((b, heads, d))
    c, n, m = np.zeros_like(y), np.zeros_like(y), np.zeros_like(y)
    out = {k: np.zeros((b, t, heads, d)) for k in ("h", "c", "n", "m")}
    out["pre"] = np.zeros((b, t, 4, heads, d))
    out["gates"] = np.zeros((b, t, 4, heads, d))
    out["input_sets_m"] = np.zeros((b, t, heads, d), bool)
    for step in range(t):
        raw = wx[:, step] + np.einsum("bhi,higo->bgho", y, recurrent) + bias.transpose(1, 0, 2)[None]
        i, f, z, o = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
        log_f_plus_m = m + _log_sigmoid(f)
        m_new = i if np.all(n == 0.0) else np.maximum(i, log_f_plus_m)
        i_gate = np.minimum(np.exp(i - m_new), 1.0)
        f_gate = np.minimum(np.exp(log_f_plus_m - m_new), 1.0)
        o_gate = 1.0 / (1.0 + np.exp(-o))
        c = f_gate * c + i_gate * np.tanh(z)
        n = f_gate * n + i_gate
        y = o_gate * c / n
        out["input_sets_m"][:, step] = m_new == i  # also at the first step, when m is set by i alone
        m = m_new
        out["pre"][:, step] = raw
        out["gates"][:, step] = np.stack([i_gate, f_gate, np.tanh(z), o_gate], axis=1)
        for key, value in (("h", y), ("c", c), ("n", n), ("m", m)):
            out[key][:, step] = value
    return out


def _head_trace(run: dict[str, np.ndarray], h: int, reference: np.ndarray) -> activations.Trace:
    gates = run["gates"][:, :, :, h]  # (batch, time, 4, d)
    acts = np.concatenate([gates, run["m"][:, :, None, h], run["n"][:, :, None, h]], axis=2)
    low = np.zeros(acts.shape, bool)
    high = np.zeros(acts.shape, bool)
    pre_i = run["pre"][:, :, 0, h]
    high[:, :, 0] = run["input_sets_m"][:, :, h]
    low[:, :, 0] = pre_i - run["m"][:, :, h] < UNDERFLOW
    for g, bounds in (
        (1, names.SIGMOID_SATURATION),
        (2, names.TANH_SATURATION),
        (3, names.SIGMOID_SATURATION),
    ):
        low[:, :, g] = gates[:, :, g] < bounds[0]
        high[:, :, g] = gates[:, :, g] > bounds[1]
    b, t = acts.shape[:2]
    return activations.Trace(
        cell="lstm",
        gates=GATES,
        functions=FUNCTIONS,
        activations=acts.astype(np.float32),
        valid=np.ones((b, t), bool),
        outputs=run["h"][:, :, h].astype(np.float32),
        states=run["c"][:, :, h].astype(np.float32),
        saturated_low=low,
        saturated_high=high,
        reference_outputs=reference[:, h],
    )


def trace_calls(
    layer: Any, cells: list[Any], calls: list[dict[str, Any]]
) -> list[list[tuple[Any, activations.Trace]]]:
    """`[[(cell, Trace)] per call]` of an sLSTM layer's head cells, from the calls `register` recorded."""
    per_call = []
    per_head = xlstm.slstm_arrays(layer)
    for call in calls:
        run = recompute(per_head, call["x"], call["x_conv"])
        per_call.append([(cell, _head_trace(run, cell.head, call["reference"])) for cell in cells])
    return per_call


def package_forward(layer: Any, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The package's own vanilla forward of an sLSTM layer's cell on `x`, for checks: `(states, gates)`.

    `states` `(4, time + 1, batch, hidden)` holds y, c, n, m (step 0 the
    zero state), `gates` `(time + 1, 4, batch, hidden)` i', f', z, sigmoid o
    (`gates[t]` for step t, the last row unused), hidden = heads * head_dim
    head by head; what `slstm_forward` returns.
    """
    from xlstm.blocks.slstm.src.vanilla import slstm_forward

    cell = layer.slstm_cell
    inputs = []
    handle = cell.register_forward_pre_hook(lambda mod, args: inputs.append(args[0]))
    try:
        with torch.no_grad():
            layer(x)
            wx = cell._permute_input(inputs[0])
            states, _, gates = slstm_forward(
                wx, cell._get_state(wx), cell._recurrent_kernel, cell._bias, cell.pointwise
            )
    finally:
        handle.remove()
    return states.numpy(), gates.numpy()


# mLSTM: one scalar input and forget gate per head, on the concatenated q, k, v.
MLSTM_GATES = ("input", "forget", "stabilizer", "normalizer")
MLSTM_FUNCTIONS = ("exp", "sigmoid", "identity", "identity")


def register_mlstm(layer: Any, calls: list[dict[str, Any]]) -> list[Any]:
    """Hooks on an mLSTM layer appending one `{q, k, v, reference}` per call to `calls`; returns the handles.

    `reference` is the package's own h before the cell's output norm (the
    output of its `parallel_stabilized_simple` backend), `(batch, heads, time, head_dim)`.
    """
    current: dict[str, Any] = {}
    cell = layer.mlstm_cell

    def pre(mod: Any, args: Any, kwargs: Any) -> None:
        current.clear()
        for name in ("q", "k", "v"):
            current[name] = kwargs[name].detach().to("cpu", copy=True).double().numpy()

    def norm(mod: Any, args: Any) -> None:
        calls.append(dict(current, reference=args[0].detach().to("cpu", copy=True).float().numpy()))

    return [
        cell.register_forward_pre_hook(pre, with_kwargs=True),
        cell.outnorm.register_forward_pre_hook(norm),
    ]


def recompute_mlstm(
    arrays: dict[str, np.ndarray], heads: int, q: np.ndarray, k: np.ndarray, v: np.ndarray, eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """The mLSTM cell's parallel stabilized form in numpy (float64), from the layer's split gate blocks.

    Returns a dict: `pre` `(batch, time, 2, heads)` (i, f pre-activations),
    `m` (the row-wise stabilizer, max_s log D[t, s]), `n` (the normalizer,
    max(|sum_s C[t, s]|, exp(-m))), `i` (exp(i_t - m_t), the weight of the
    step's own input), `f` (sigmoid f_t), each `(batch, time, heads)`, and
    `h` `(batch, time, heads * head_dim)`.
    """
    qkv = np.concatenate([q, k, v], axis=-1)
    pre = (qkv @ arrays["gate_kernel"].astype(np.float64) + arrays["gate_bias"]).reshape(
        *qkv.shape[:2], 2, heads
    )
    b, t = qkv.shape[:2]
    d = q.shape[-1] // heads
    qh, kh, vh = (a.reshape(b, t, heads, d).transpose(0, 2, 1, 3) for a in (q, k, v))
    i_pre, f_pre = pre[:, :, 0].transpose(0, 2, 1), pre[:, :, 1].transpose(0, 2, 1)  # (b, heads, t)
    log_f = np.concatenate([np.zeros((b, heads, 1)), np.cumsum(_log_sigmoid(f_pre), axis=-1)], axis=-1)
    log_fg = log_f[:, :, 1:, None] - log_f[:, :, None, 1:]  # [t, s] = sum of log f over (s, t]
    causal = np.tril(np.ones((t, t), bool))
    log_d = np.where(causal, log_fg, -np.inf) + i_pre[:, :, None, :]
    m = log_d.max(axis=-1)
    c = (qh @ (kh / np.sqrt(d)).transpose(0, 1, 3, 2)) * np.exp(log_d - m[..., None])
    n = np.maximum(np.abs(c.sum(axis=-1)), np.exp(-m))
    h = (c / (n[..., None] + eps)) @ vh  # (b, heads, t, d)
    return {
        "pre": pre,
        "m": m.transpose(0, 2, 1),
        "n": n.transpose(0, 2, 1),
        "i": np.exp(i_pre - m).transpose(0, 2, 1),
        "f": (1.0 / (1.0 + np.exp(-f_pre))).transpose(0, 2, 1),
        "h": h.transpose(0, 2, 1, 3).reshape(b, t, heads * d),
    }


def trace_mlstm_calls(
    layer: Any, cell: Any, calls: list[dict[str, Any]]
) -> list[list[tuple[Any, activations.Trace]]]:
    """`[[(cell, Trace)] per call]` of an mLSTM layer (one unit per head), from the calls `register_mlstm` recorded.

    Stand-ins for saturation: input gate `saturated_high` where the step's
    own input sets the stabilizer (exp(i_t - m_t) = 1), `saturated_low`
    where it underflows in float32; forget gate the sigmoid bounds.
    """
    arrays = xlstm.mlstm_arrays(layer)
    heads = cell.heads
    per_call = []
    for call in calls:
        run = recompute_mlstm(arrays, heads, call["q"], call["k"], call["v"])
        acts = np.stack([run["i"], run["f"], run["m"], run["n"]], axis=2)
        low, high = np.zeros(acts.shape, bool), np.zeros(acts.shape, bool)
        log_i = np.log(np.maximum(run["i"], np.finfo(np.float64).tiny))
        high[:, :, 0] = log_i >= 0.0
        low[:, :, 0] = log_i < UNDERFLOW
        low[:, :, 1] = run["f"] < names.SIGMOID_SATURATION[0]
        high[:, :, 1] = run["f"] > names.SIGMOID_SATURATION[1]
        b, t = acts.shape[:2]
        reference = call["reference"].transpose(0, 2, 1, 3).reshape(b, t, -1)
        trace = activations.Trace(
            cell="mlstm",
            gates=MLSTM_GATES,
            functions=MLSTM_FUNCTIONS,
            activations=acts.astype(np.float32),
            valid=np.ones((b, t), bool),
            outputs=run["h"].astype(np.float32),
            saturated_low=low,
            saturated_high=high,
            reference_outputs=reference,
        )
        per_call.append([(cell, trace)])
    return per_call


def register_layer(layer: Any, calls: list[dict[str, Any]]) -> list[Any]:
    """`register` or `register_mlstm`, by the layer's kind."""
    return (register if xlstm.is_slstm(layer) else register_mlstm)(layer, calls)


def trace_layer_calls(
    layer: Any, cells: list[Any], calls: list[dict[str, Any]]
) -> list[list[tuple[Any, activations.Trace]]]:
    """`trace_calls` or `trace_mlstm_calls`, by the layer's kind."""
    if xlstm.is_slstm(layer):
        return trace_calls(layer, cells, calls)
    return trace_mlstm_calls(layer, cells[0], calls)
