"""The weights a PyTorch recurrent module computes with, found behind wrappers, and where they come from.

An `nn.LSTM`'s `weight_hh_l0` is not always its trained parameter:

- weight drop (AWD-LSTM: salesforce `awd-lstm-lm`'s `WeightDrop`, fastai's
  `WeightDropout`) trains `weight_hh_l0_raw`, on the module or on the
  wrapper that holds it, and sets a dropped-out copy as a plain tensor
  `weight_hh_l0` before each forward (absent before the first one). The
  weight logged is the raw parameter: what the trained model (eval mode)
  computes with.
- `torch.nn.utils.parametrize` (orthogonal, spectral norm, weight norm,
  any custom parametrization) computes `weight_hh_l0` from
  `parametrizations.weight_hh_l0.original`; the older hook-based
  `weight_norm` / `spectral_norm` compute it from `_g` / `_v` or `_orig`
  before each forward. The weight logged is the effective one, computed
  as eval mode does, leaving every buffer (a spectral norm's `u`, `v`),
  mode and the RNG as they were.

`resolve` names each weight's origin: `parameter`, `weight drop: ...`,
`parametrized: ...`, `weight_norm hook: ...`, `spectral_norm hook: ...` or
`plain tensor: ...` (a tensor set by code tb-lstm-gates does not know; the
probe's self-check tells whether it is what the module computed with).
"""

import dataclasses
import re
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

PARAMETER = "parameter"


@dataclasses.dataclass(frozen=True)
class Weight:
    """One weight of a recurrent module, as it is logged.

    Attributes:
      tensor: the weight the module computes with (eval mode).
      origin: where it comes from (see the module's docstring).
      grad_param: the leaf parameter whose `.grad` is this weight's
        gradient, gate by gate (the parameter itself, a weight drop's raw
        parameter), or None (a parametrization: its parameters' gradients
        are not the weight's).
      sources: the parameters it is computed from (for `unlogged_weights`).
    """

    tensor: torch.Tensor
    origin: str
    grad_param: torch.Tensor | None
    sources: tuple[torch.Tensor, ...]


class Unsplittable(Exception):
    """A recurrent module whose weights tb-lstm-gates cannot read; the message says why."""


def resolve(module: nn.Module, name: str, parent: nn.Module | None = None) -> Weight:
    """The `Weight` the recurrent module `module` computes with as its attribute `name` (`weight_hh_l0`).

    Args:
      module: an `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` or `nn.GRUCell`.
      name: the attribute, e.g. `weight_hh_l0`.
      parent: the module holding `module`, where a weight drop wrapper
        keeps the raw parameter (fastai), or None.

    Raises:
      Unsplittable: the module has no such weight anywhere known.
    """
    raw_name = name + "_raw"
    for owner, where in ((module, ""), (parent, " on its %s" % type(parent).__name__)):
        raw = None if owner is None else owner._parameters.get(raw_name)
        if raw is not None:
            return Weight(raw, "weight drop: %s%s" % (raw_name, where), raw, (raw,))
    try:
        if parametrize.is_parametrized(module, name):
            return _parametrized(module, name)
        hook = _weight_hook(module, name)
    except Exception as e:  # a custom parametrization's own failure: named, never raised into training
        raise Unsplittable("computing its %s raised %s: %s" % (name, type(e).__name__, e)) from None
    if hook is not None:
        return hook
    param = module._parameters.get(name)
    if param is not None:
        return Weight(param, PARAMETER, param, (param,))
    value = module.__dict__.get(name)
    if isinstance(value, torch.Tensor):
        return Weight(value, "plain tensor: %s, set outside the module's parameters" % name, None, ())
    raise Unsplittable(
        "it has no %s: no parameter, no %s (weight drop) on it or its wrapper, no parametrization or "
        "weight_norm/spectral_norm hook" % (name, raw_name)
    )


def _parametrized(module: nn.Module, name: str) -> Weight:
    """The effective weight of a `torch.nn.utils.parametrize` weight, computed in eval mode, nothing changed."""
    registry: Any = module.parametrizations
    plist = registry[name]
    with _Untouched(plist):
        tensor = getattr(module, name)
    kinds = ", ".join(_snake(type(p).__name__) for p in plist)
    return Weight(tensor, "parametrized: %s" % kinds, None, tuple(plist.parameters()))


def _snake(name: str) -> str:
    """`_SpectralNorm` -> `spectral_norm`, `Symmetric` -> `symmetric`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.lstrip("_")).lower()


def _weight_hook(module: nn.Module, name: str) -> Weight | None:
    """The weight an old hook-based `weight_norm` / `spectral_norm` computes as `name`, or None."""
    hooks: list[Any] = list(module._forward_pre_hooks.values())
    for hook in hooks:
        if getattr(hook, "name", None) != name or not callable(getattr(hook, "compute_weight", None)):
            continue
        kind = type(hook).__name__
        if kind == "SpectralNorm":
            # Without the power iteration, as eval mode computes it: `u` and `v` stay as they are.
            with torch.no_grad():
                tensor = hook.compute_weight(module, do_power_iteration=False)
            sources: tuple[str, ...] = (name + "_orig",)
            origin = "spectral_norm hook: %s_orig" % name
        elif kind == "WeightNorm":
            tensor = hook.compute_weight(module)
            sources = (name + "_g", name + "_v")
            origin = "weight_norm hook: %s_g, %s_v" % (name, name)
        else:
            continue
        found = [module._parameters.get(s) for s in sources]
        return Weight(tensor, origin, None, tuple(p for p in found if p is not None))
    return None


class _Untouched:
    """Runs a parametrization as eval mode does, then puts back its modes, buffers and the RNG state.

    A spectral norm's parametrization runs a power iteration in training
    mode, changing its `_u` and `_v` in place: computing the weight to log
    must not change what the next training step computes.
    """

    def __init__(self, module: nn.Module) -> None:
        self._module = module

    def __enter__(self) -> "_Untouched":
        self._modes = [(m, m.training) for m in self._module.modules()]
        self._buffers = [(b, b._version, b.detach().clone()) for b in self._module.buffers()]
        self._rng = torch.random.get_rng_state()
        self._cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        for m, _ in self._modes:
            m.training = False
        return self

    def __exit__(self, *exc: object) -> None:
        for m, training in self._modes:
            m.training = training
        with torch.no_grad():
            for buffer, version, copy in self._buffers:
                if buffer._version != version:
                    buffer.copy_(copy)
        torch.random.set_rng_state(self._rng)
        if self._cuda_rng is not None:
            torch.cuda.set_rng_state_all(self._cuda_rng)
