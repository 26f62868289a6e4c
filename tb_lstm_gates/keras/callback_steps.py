"""Which step `LSTMGatesCallback` logs: where a run continues, where a `fit` call starts, the global batch.

`StepNumbering` is a mixin of the callback, over its state (`_existing`,
`_last_step`, `_base`, `_epoch`, `_first_epoch`, `_rerun`).
"""

import warnings
from typing import TYPE_CHECKING, Any

from tb_lstm_gates.core import callers
from tb_lstm_gates.keras import probe_calls, run_steps


class StepNumbering:
    """The callback's step arithmetic: steps keep counting across `fit` calls and callbacks."""

    if TYPE_CHECKING:
        # The callback's state and methods this mixin works on, for the type checker
        # (`LSTMGatesCallback` and `keras.callbacks.Callback` set them).
        model: Any
        params: Any
        log_dir: str
        update_freq: str | int
        _existing: set[int]
        _last_step: int | None
        _base: int
        _epoch: int
        _first_epoch: int | None
        _rerun: bool

        @property
        def run_dir(self) -> Any: ...

        def _log(self, step: Any, logs: Any = None) -> None: ...

    def _continue_run(self) -> None:
        """Where this model's steps continue in `log_dir`, from the steps it already holds."""
        self._existing.update(run_steps.logged_steps(self.run_dir))
        if not self._existing:
            return
        if self._iterations():
            # A model that has trained continues the run its log_dir holds.
            self._last_step = max(self._existing)
            return
        self._rerun = True
        warnings.warn(
            "LSTMGatesCallback: %s already holds steps %s of an earlier run, and this model has not "
            "trained yet: its steps start again at 0 and replace them. To keep both runs, give this one "
            "a new directory, e.g. log_dir=%r."
            % (self.run_dir, run_steps.step_range(self._existing), self.log_dir + "_2"),
            stacklevel=callers.user_stacklevel(),
        )

    def _begin_fit(self, epoch: Any, log_base: Any = True) -> None:
        """Fixes the step this `fit` call starts from, and logs it (if no run holds it yet and `log_base`)."""
        self._first_epoch = epoch
        iterations = self._iterations()
        if self.update_freq == "epoch":
            # `initial_epoch` given: Keras's epoch numbers are the steps.
            base = epoch if epoch > 0 else self._last_step or 0
        elif iterations:
            base = iterations
        elif epoch > 0:
            base = epoch * ((self.params or {}).get("steps") or 0)
        else:
            base = self._last_step or 0
        self._base = base
        if log_base and self._last_step is None and (base not in self._existing or self._rerun):
            self._log(base)

    def _fit_begun(self, epoch: Any) -> None:
        # A hook after the epoch began, with no `on_epoch_begin` before it:
        # the weights before this epoch are gone, so its first step is not logged.
        if self._first_epoch is None:
            self._begin_fit(epoch, log_base=False)
            self._epoch = epoch

    def _iterations(self) -> Any:
        """How many steps the model's optimizer has taken, or None without one."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or getattr(optimizer, "iterations", None) is None:
            return None
        self._sync_backend_state()
        return int(probe_calls.to_numpy(optimizer.iterations))

    def _global_batch(self, batch: Any) -> Any:
        steps = (self.params or {}).get("steps")
        if steps:
            assert self._first_epoch is not None  # every batch hook calls _fit_begun first
            return self._base + (self._epoch - self._first_epoch) * steps + batch + 1
        # Unknown epoch length: the optimizer's own count.
        return self._iterations()

    def _sync_backend_state(self) -> None:
        # Keras on JAX keeps the weights out of the model's variables during an
        # epoch; a batch hook that reads them has to put them back first.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
