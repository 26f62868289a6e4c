"""Cells of a saved PyTorch `state_dict` (or a Lightning checkpoint), read without building the model.

Named as `GateLogger` names the live modules, so `tb-lstm-gates import` of a
checkpoint lands on the same series.
"""

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from tb_lstm_gates.core import layouts
from tb_lstm_gates.torch.cells import numpy_copy

# A recurrent weight in a state_dict: `<module path>.<weight>[_l<k>[_reverse]][_raw]`
# (`_raw`: weight drop's trained parameter, which the logger logs; see `torch.weights`).
_STATE_KEY = re.compile(
    r"^(?:(?P<path>.*)\.)?(?P<weight>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
    r"(?P<suffix>_l(?P<index>\d+)(?P<reverse>_reverse)?)?(?P<raw>_raw)?$"
)
# The attribute under which a weight drop wrapper holding the raw parameter
# (fastai's `WeightDropout`) keeps its module.
_WRAPPED = "module"
# Prefixes that DistributedDataParallel / DataParallel and torch.compile put before a module's names.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def cells_from_state_dict(
    shapes: Mapping[str, Sequence[int]],
) -> list[tuple[str, layouts.Layout, dict[str, str]]]:
    """The LSTM and GRU cells of a state_dict, found from parameter names and shapes.

    Args:
      shapes: mapping from state_dict key to shape.

    Returns:
      list of `(layer, layout, {weight name: key})`, with the names a live
      `GateLogger` gives the same modules (wrappers' `module.` and `_orig_mod.`
      prefixes dropped). Plain `nn.RNN` weights (one gate) are left out.
    """
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for key in shapes:
        name = key
        while name.startswith(_WRAPPER_PREFIXES):
            name = name.split(".", 1)[1]
        name = name.replace("._orig_mod.", ".")
        match = _STATE_KEY.match(name)
        if match:
            group = groups.setdefault((match["path"] or "", match["suffix"] or ""), {})
            # A raw weight wins over the copy a forward in eval mode registers beside it.
            if match["raw"] or match["weight"] not in group or not group[match["weight"]].endswith("_raw"):
                group[match["weight"]] = key
    _move_wrapper_raws(groups)
    cells: list[tuple[str, layouts.Layout, dict[str, str]]] = []
    for (path, suffix), keys in groups.items():
        if "weight_ih" not in keys or "weight_hh" not in keys:
            continue
        units = shapes[keys["weight_hr"]][1] if "weight_hr" in keys else shapes[keys["weight_hh"]][1]
        n_gates, rest = divmod(shapes[keys["weight_ih"]][0], units)
        if rest or n_gates not in (3, 4):
            continue
        bias = "bias_ih" in keys
        layout = layouts.torch_lstm("weight_hr" in keys, bias) if n_gates == 4 else layouts.torch_gru(bias)
        if suffix:
            base = path.replace(".", "/") or ("lstm" if n_gates == 4 else "gru")
            layer = base + "/" + suffix[1:]  # `_l0_reverse` -> `l0_reverse`
        else:
            layer = path.replace(".", "/") or ("lstm_cell" if n_gates == 4 else "gru_cell")
        cells.append((layer, layout, {w: keys[w] for w in layout.weights}))
    return sorted(cells, key=lambda cell: cell[0])


def _move_wrapper_raws(groups: dict[tuple[str, str], dict[str, str]]) -> None:
    """Puts raw weights a weight drop wrapper holds (`rnns.0.weight_hh_l0_raw`) with its module's others
    (`rnns.0.module.weight_ih_l0`), as the live logger logs them (fastai's `WeightDropout`)."""
    for (path, suffix), keys in list(groups.items()):
        inner = groups.get(((path + "." if path else "") + _WRAPPED, suffix))
        if inner is None or "weight_ih" in keys or not all(k.endswith("_raw") for k in keys.values()):
            continue
        for weight, key in keys.items():
            if weight not in inner or not inner[weight].endswith("_raw"):
                inner[weight] = key
        del groups[path, suffix]


def load_state_dict(path: str | os.PathLike[str]) -> tuple[Mapping[str, torch.Tensor], int | None]:
    """`(state_dict, step)` of a `torch.save`d file, never unpickling arbitrary objects.

    Takes a state_dict, a checkpoint dict holding one under `state_dict` or
    `model` (Lightning `.ckpt` files hold `state_dict`), loaded with
    `weights_only=True`. `step` is the checkpoint's `global_step` or `step`
    when it has one, else None.

    Raises:
      ValueError: the file cannot be loaded safely or holds no state_dict.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for unsafe or corrupt files.
        raise ValueError(
            "cannot load %s with torch.load(weights_only=True): %s; save the weights with "
            "torch.save(model.state_dict(), path)" % (path, str(e).strip().splitlines()[0])
        ) from None

    def is_state_dict(value: Any) -> bool:
        return bool(
            isinstance(value, Mapping) and value and all(isinstance(v, torch.Tensor) for v in value.values())
        )

    step: int | None = None
    if not is_state_dict(loaded) and isinstance(loaded, Mapping):
        for key in ("global_step", "step"):
            if isinstance(loaded.get(key), int):
                step = loaded[key]
                break
        loaded = next((loaded[k] for k in ("state_dict", "model") if is_state_dict(loaded.get(k))), loaded)
    if not is_state_dict(loaded):
        raise ValueError(
            "%s holds no state_dict: expected torch.save(model.state_dict()), a dict holding one under "
            "'state_dict' or 'model', or a Lightning .ckpt" % path
        )
    return loaded, step


def state_arrays(state: Mapping[str, torch.Tensor], keys: Iterable[str]) -> dict[str, np.ndarray]:
    """`{key: array}` of state_dict entries as the `torch_*` layouts take them (transposed copies)."""
    return layouts.torch_arrays({key: numpy_copy(state[key]) for key in keys})
