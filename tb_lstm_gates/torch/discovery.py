"""Finding the recurrent modules of a module tree (or of a mapping of named models), wrappers unwrapped.

`tb_lstm_gates.torch.cells` splits what this finds; its names stay importable from there.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from torch import nn

from tb_lstm_gates.torch import xlstm

_RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)
Models = nn.Module | Mapping[str, nn.Module]  # what find_cells takes


def unwrap(module: Any) -> Any:
    """The module inside `DataParallel`, `DistributedDataParallel` and `torch.compile` wrappers."""
    while True:
        if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def _walk(
    module: nn.Module, path: tuple[str, ...], seen: set[int]
) -> Iterator[tuple[tuple[str, ...], nn.Module]]:
    """`(path, module)` of every recurrent module below `module`, each object once (`seen` holds ids)."""
    module = unwrap(module)
    if id(module) in seen:
        return
    seen.add(id(module))
    if isinstance(module, _RECURRENT_TYPES + xlstm.XLSTM_TYPES):
        yield path, module
        return
    for name, child in module.named_children():
        yield from _walk(child, path + (name,), seen)


def _roots(module: Models) -> list[tuple[tuple[str, ...], nn.Module]]:
    """`[(path prefix, module)]` of one module, or of a mapping from model name to module."""
    if isinstance(module, Mapping):
        bad = [k for k, m in module.items() if not (isinstance(k, str) and k) or not isinstance(m, nn.Module)]
        if not module or bad:
            raise ValueError(
                "expected a torch.nn.Module or a non-empty mapping from model name (a non-empty str) to "
                "torch.nn.Module, e.g. {'encoder': encoder, 'decoder': decoder}; got %s"
                % (", ".join("%r: %s" % (k, type(module[k]).__name__) for k in bad) or "an empty mapping")
            )
        return [((k,), m) for k, m in module.items()]
    if not isinstance(module, nn.Module):
        raise ValueError(
            "expected a torch.nn.Module or a mapping from model name to torch.nn.Module, got %r"
            % type(module).__name__
        )
    return [((), module)]


def recurrent_modules(module: Models) -> list[tuple[tuple[str, ...], nn.Module]]:
    """`[(path, module)]` of every recurrent module of `module` (or of a mapping of named modules), once each."""
    seen: set[int] = set()
    return [found for prefix, root in _roots(module) for found in _walk(root, prefix, seen)]
