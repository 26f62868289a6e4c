"""TF1 graphs and sessions: find recurrent cells by their variables, log their gates.

TF1 cells (`tf.compat.v1.nn.rnn_cell.LSTMCell`, `BasicLSTMCell`, `GRUCell`,
inside `dynamic_rnn`, `bidirectional_dynamic_rnn`, `MultiRNNCell`) are not
objects one can walk after the graph is built; only their variables remain,
named by the variable scopes they were built in:

    doc_word/fw/lstm_cell/kernel                      (in + h, 4u)
    doc_word/fw/lstm_cell/bias                        (4u)
    peep/lstm_cell/w_i_diag, w_f_diag, w_o_diag       (u)
    peep/lstm_cell/projection/kernel                  (u, num_proj)
    rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel
    rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel   (in + u, 2u)
    rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel (in + u, u)

`scopes.find_cells_by_name` finds them from names and shapes alone, so the same discovery
serves a live graph (`LSTMGatesHook`, `log_session`) and a checkpoint's
variable list (`tb_lstm_gates.checkpoints`). It also finds Keras cells
(`kernel` + `recurrent_kernel` under one scope), as tf_keras layers in a TF1
graph, tf_keras checkpoints and Keras `.weights.h5` files name them.

`gate_blocks` (a cell's gate blocks as slices of its variables) and
`tf1_gate_penalty` (the gate-wise penalty of a kernel) live in
`tb_lstm_gates.tf1.penalty`.
"""

import os
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tb_lstm_gates.core import scopes, stats
from tb_lstm_gates.core.layouts import Layout
from tb_lstm_gates.core.scopes import strip_output_index
from tb_lstm_gates.logs import distribute, guard, summary, tokens
from tb_lstm_gates.logs import hparams as hparams_summary
from tb_lstm_gates.tf1.penalty import penalty_fetches
from tb_lstm_gates.tf1.session_logger import SESSION_LOGGERS, SessionLogger, make_probe, probe_errors


def graph_cells(
    graph: tf.Graph | None = None,
    layouts: Mapping[str, Layout] | None = None,
    input_depth: Mapping[str, int] | None = None,
) -> list[scopes.Cell]:
    """The recurrent cells among a graph's global variables.

    Returns:
      list of `scopes.Cell` whose `variables` are the graph's `tf.Variable`s,
      in the order the graph created them (the model's order).

    Raises:
      ValueError: the graph has no cell tb-lstm-gates can split, or see
        `scopes.find_cells_by_name`.
    """
    graph = graph or tf.compat.v1.get_default_graph()
    with graph.as_default():
        variables = {strip_output_index(v.name): v for v in tf.compat.v1.global_variables()}
    cells = scopes.find_cells_by_name(
        {n: v.shape.as_list() for n, v in variables.items()}, layouts, input_depth
    )
    if not cells:
        raise ValueError(
            "the graph has no recurrent cell whose gates tb-lstm-gates can split "
            "(supported: %s); for a cell in another scope, pass "
            "layouts={'scope/of/cell': tb_lstm_gates.core.layouts.tf1_lstm(input_depth)}"
            % scopes.SUPPORTED_VARIABLE_SCOPES
        )
    # In the model's order: the graph creates a model's variables layer after layer.
    created = {name: i for i, name in enumerate(variables)}
    cells.sort(key=lambda cell: min(created[strip_output_index(n)] for n in cell.variables.values()))
    for cell in cells:
        cell.variables = {w: variables[strip_output_index(n)] for w, n in cell.variables.items()}
    return cells


def _check_timing(every_n_steps: int | None, every_n_secs: float | None) -> list[str]:
    errors = []
    if every_n_steps is not None and every_n_secs is not None:
        errors.append(
            "give only one of every_n_steps and every_n_secs, got %r and %r" % (every_n_steps, every_n_secs)
        )
    if every_n_steps is not None and not (guard.is_int(every_n_steps) and every_n_steps > 0):
        errors.append("every_n_steps must be a positive int, got %r" % (every_n_steps,))
    if every_n_secs is not None and not (isinstance(every_n_secs, (int, float)) and every_n_secs > 0):
        errors.append("every_n_secs must be a positive number, got %r" % (every_n_secs,))
    return errors


class LSTMGatesHook(tf.compat.v1.train.SessionRunHook):
    """Logs per-gate statistics of a TF1 graph's recurrent cells during training.

    For `tf.compat.v1.train.MonitoredTrainingSession` (or any `MonitoredSession`).
    Finds the cells when the graph is finalised (see `scopes.find_cells_by_name`), logs their
    weights right after the session is created (the weights before training)
    and then every `every_n_steps` global steps (at their multiples) or
    `every_n_secs` seconds, at the graph's global step read after the run,
    and once more at the end. Each time, every
    weight is read in one `session.run`. Only the chief (see
    `distribute.is_chief`) writes. Penalties built with `tf1_gate_penalty`
    on the cells' kernels are logged too, per block, with each cell's and
    the graph's total (`stat="penalty"`): the tab's Regularization section
    shows them.

    A failure while logging is reported once as a warning and logging stops;
    training goes on, unless `strict=True`.

    Args:
      log_dir: the run directory the summaries go to.
      every_n_steps: log at the global steps that are multiples of this
        (100 if neither this nor `every_n_secs` is given), whatever step
        the session starts from (a restored global step keeps the grid).
        The hook reads the global step after each `session.run`: runs
        that do not move it (evaluations, a second train op of the same
        step) never log; where one run moves it past a multiple (several
        steps per run), the step read is logged.
      every_n_secs: or log at most once every this many seconds, at the
        global step read after a run that moved it.
      histogram_freq: write histograms every this many logged steps; 0 for none.
      histogram_bins: buckets per gate histogram.
      layouts: mapping from a cell's scope to its `layouts.Layout`, for cells
        `scopes.find_cells_by_name` cannot find or split on its own.
      input_depth: mapping from a TF1 cell's scope to its input depth.
      strict: raise logging failures instead of warning and going on.
      hparams: None, or the run's hyperparameters (a dict of names to bool,
        int, float or str) to show in TensorBoard's HParams dashboard beside
        the gate metrics every step writes (docs/sweeps.md).
      probe: None, or a feed dict for the model's placeholders (a probe
        batch, its sequence lengths, keep_prob 1.0): each logged step also
        holds what every cell's gates did on it (see `tb_lstm_gates.tf1.probe`),
        fetched with the weights in the same `session.run`.
      probe_tokens: None, or the probe's tokens for the tab's Text view (see
        `tb_lstm_gates.logs.tokens`).
      probe_inputs: `{cell scope: batch-major input tensor}` for cells no
        `dynamic_rnn` runs (a warning names them).

    Example:

    ```python
    import os
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    from tb_lstm_gates.tf1 import LSTMGatesHook

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    x = v1.placeholder(tf.float32, [None, 10, 200])
    out, _ = v1.nn.bidirectional_dynamic_rnn(
        v1.nn.rnn_cell.LSTMCell(100), v1.nn.rnn_cell.LSTMCell(100), x,
        dtype=tf.float32, scope="doc_word")
    loss = tf.reduce_mean(tf.concat(out, -1) ** 2)
    step = v1.train.get_or_create_global_step()
    train = v1.train.AdamOptimizer().minimize(loss, global_step=step)
    hook = LSTMGatesHook("logs/tf1", every_n_steps=10)
    with v1.train.MonitoredTrainingSession(hooks=[hook]) as sess:
        for _ in range(30):
            sess.run(train, {x: tf.random.normal([8, 10, 200]).numpy()})
    ```
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        every_n_steps: int | None = None,
        every_n_secs: float | None = None,
        histogram_freq: int = 1,
        histogram_bins: int = stats.DEFAULT_BINS,
        layouts: Mapping[str, Layout] | None = None,
        input_depth: Mapping[str, int] | None = None,
        strict: bool = False,
        hparams: Mapping[str, Any] | None = None,
        probe: dict[Any, Any] | None = None,
        probe_tokens: tokens.ProbeTokens | None = None,
        probe_inputs: Mapping[str, tf.Tensor] | None = None,
    ) -> None:
        if every_n_steps is None and every_n_secs is None:
            every_n_steps = 100
        errors = _check_timing(every_n_steps, every_n_secs)
        errors += guard.check_logging_args(log_dir, histogram_freq, histogram_bins, hparams)
        errors += probe_errors(probe, probe_tokens, probe_inputs)
        if errors:
            raise ValueError("LSTMGatesHook: " + "; ".join(errors))
        self.probe, self.probe_tokens, self.probe_inputs = probe, probe_tokens, probe_inputs
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.histogram_bins = histogram_bins
        self.layouts = layouts
        self.input_depth = input_depth
        self.strict = strict
        self.hparams = None if hparams is None else dict(hparams)
        self._every_n_steps = every_n_steps
        self._timer = tf.compat.v1.train.SecondOrStepTimer(every_secs=every_n_secs, every_steps=every_n_steps)
        self._logger: SessionLogger | None = None
        self._guard = guard.FailureGuard("LSTMGatesHook", self.log_dir, strict)
        self._last_step: int | None = None
        self._logged = 0

    def begin(self) -> None:
        self._cells = graph_cells(layouts=self.layouts, input_depth=self.input_depth)
        self._global_step = tf.compat.v1.train.get_global_step()
        if self._global_step is None:
            raise RuntimeError(
                "LSTMGatesHook logs at the graph's global step, and the graph has "
                "none: create it with tf.compat.v1.train.get_or_create_global_step()"
            )
        self._penalties = penalty_fetches(tf.compat.v1.get_default_graph(), self._cells)
        self._probe = make_probe(self._cells, self.probe, self.probe_tokens, self.probe_inputs)
        self._chief = distribute.is_chief()
        self._fetches: dict[str, Any] | None = None

    def after_create_session(self, session: tf.compat.v1.Session, coord: Any) -> None:
        if self._chief:
            self._guard.run(self._open)
            self._log(session)

    def _open(self) -> None:
        writer = summary.GateSummaryWriter(self.log_dir, step_unit="global step")
        if self.hparams is not None:
            hparams_summary.write_session(self.log_dir, self.hparams)
        self._logger = SessionLogger(writer, self._cells, self.histogram_bins, self._penalties, self._probe)
        self._fetches = {"step": self._global_step, "values": self._logger.fetches()}

    def before_run(self, run_context: Any) -> Any:
        if self._logger is None or self._guard.failed:
            return None
        return tf.compat.v1.train.SessionRunArgs(self._global_step)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        if run_values.results is None:
            return
        # The fetched step was read while the run ran: before a train op
        # moved it, and not moved at all by an evaluation run. The decision
        # is taken on the step read after the run, as TF's
        # CheckpointSaverHook does, and that read is made only where a train
        # step could have reached the grid.
        if self._due(int(run_values.results) + 1) and self._due(
            int(run_context.session.run(self._global_step))
        ):
            self._log(run_context.session)

    def _due(self, step: int) -> bool:
        """Whether `step`, a global step read, is one to log at (see `every_n_steps`)."""
        if self._every_n_steps is None:
            return bool(self._timer.should_trigger_for_step(step))
        n = self._every_n_steps
        return self._last_step is None or step // n > self._last_step // n

    def end(self, session: tf.compat.v1.Session) -> None:
        if self._logger is None:
            return
        self._log(session)
        self._guard.run(self._logger.writer.close)
        self._logger = None

    def _log(self, session: tf.compat.v1.Session) -> None:
        if self._logger is None or self._guard.failed:
            return
        self._guard.run(self._log_now, self._logger, session)

    def _log_now(self, logger: SessionLogger, session: tf.compat.v1.Session) -> None:
        result = session.run(self._fetches, self.probe)
        step = int(result["step"])
        self._timer.update_last_triggered_step(step)
        if step != self._last_step:
            histograms = self.histogram_freq > 0 and self._logged % self.histogram_freq == 0
            logger.write(step, result["values"], histograms, session)
            self._last_step = step
            self._logged += 1


def log_session(
    session: tf.compat.v1.Session,
    writer: summary.GateSummaryWriter | str | os.PathLike[str],
    step: int | None = None,
    histograms: bool = True,
    histogram_bins: int = stats.DEFAULT_BINS,
    layouts: Mapping[str, Layout] | None = None,
    input_depth: Mapping[str, int] | None = None,
    probe: dict[Any, Any] | None = None,
    probe_tokens: tokens.ProbeTokens | None = None,
    probe_inputs: Mapping[str, tf.Tensor] | None = None,
) -> int:
    """Logs the gates of every recurrent cell of `session.graph` once, for hand-written loops.

    Reads every weight, every `tf1_gate_penalty` on the cells' kernels (as
    `LSTMGatesHook` does) and the global step, if `step` is None, in one
    `session.run`.

    Args:
      session: a `tf.compat.v1.Session` whose graph holds the cells.
      writer: a `summary.GateSummaryWriter` (keep one for the whole loop, so
        `update_ratio` is logged from the second call on), or a run directory
        to open a writer for this one call (its steps read as global steps
        when `step` is None).
      step: the step to log at; None for the graph's global step.
      histograms: whether to write per-gate histograms.
      histogram_bins: buckets per gate histogram.
      layouts, input_depth: as for `scopes.find_cells_by_name`.
      probe, probe_tokens, probe_inputs: as for `LSTMGatesHook`; the probe
        is fetched in the same `session.run` as the weights. To see the
        gates of a past run, rebuild its graph, restore a checkpoint and
        call `log_session(sess, run_dir, step=..., probe=feed)`.

    Returns:
      the step logged.

    Example:

    ```python
    writer = tb_lstm_gates.logs.summary.GateSummaryWriter("logs/tf1", step_unit="batch")
    for i in range(1000):
        sess.run(train_op)
        if i % 100 == 0:
            tb_lstm_gates.tf1.log_session(sess, writer, step=i)
    writer.close()
    ```
    """
    cells = graph_cells(session.graph, layouts, input_depth)
    errors = probe_errors(probe, probe_tokens, probe_inputs)
    if errors:
        raise ValueError("log_session: " + "; ".join(errors))
    own = not isinstance(writer, summary.GateSummaryWriter)
    if not isinstance(writer, summary.GateSummaryWriter):  # `own`, spelled so the checker narrows `writer`
        writer = summary.GateSummaryWriter(writer, step_unit="global step" if step is None else "step")
    try:
        logger = SESSION_LOGGERS.get(writer)
        if logger is None or [c.layer for c in logger.cells] != [c.layer for c in cells]:
            logger = SessionLogger(writer, cells, histogram_bins)
            SESSION_LOGGERS[writer] = logger
        # The same cells may live in a new graph (a rebuilt model); read these.
        logger.cells = cells
        logger.penalties = penalty_fetches(session.graph, cells)
        with session.graph.as_default():
            logger.probe = make_probe(cells, probe, probe_tokens, probe_inputs)
        fetches = {"values": logger.fetches()}
        if step is None:
            global_step = tf.compat.v1.train.get_global_step(session.graph)
            if global_step is None:
                raise ValueError("pass step=: the graph has no global step")
            fetches["step"] = global_step
        result = session.run(fetches, probe)
        step = int(result["step"]) if step is None else int(step)
        logger.write(step, result["values"], histograms, session)
        return step
    finally:
        if own:
            writer.close()
