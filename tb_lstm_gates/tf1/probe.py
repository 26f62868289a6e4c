"""Gate activations of a TF1 graph's cells on a probe feed, for `LSTMGatesHook` and `log_session`.

The probe is a feed dict for the model's placeholders (the probe batch, its
sequence lengths, any keep_prob). `probe_inputs.find_runs` finds, outside
each `dynamic_rnn` loop, the sequence a cell steps over, its lengths and
initial state; these are fetched in the same `session.run` as the weights,
and `core.tf1_cells` runs the cells' recurrences in numpy from the blocks of
those weights: the statistics describe the gates as the split defines them,
with the model's own `forget_bias`, activation and clips. A backward
direction runs over its reversed valid steps and is logged in the input's
time order. Steps past a sequence's length are masked, as the Keras mask is.

Self-check: where the loop has no random op, its own outputs are fetched too
and become `Trace.reference_outputs` (of the top cell of a `MultiRNNCell`,
whose outputs depend on every layer below). A loop with a random op inside
(a `DropoutWrapper`) is not run at all: the recurrence starts from the
sequence before the loop, so the probe has no dropout whatever keep_prob
is, and that loop's generators do not move; its cells have no reference.

The probe never runs the train op, so the global step does not move; a feed
that would read a `tf.data` iterator or a queue is refused (feed the
iterator's output tensors instead), and a random op outside the loops that
the probe would run is named in a warning.
"""

import warnings
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import tensorflow as tf

from tb_lstm_gates.core import activations, callers, scopes, tf1_cells
from tb_lstm_gates.core.trace import Trace
from tb_lstm_gates.logs import summary, tokens
from tb_lstm_gates.tf1 import probe_inputs

MAX_SEQUENCES = 256

# `session.run` fetches and their fetched values, keyed by tuples such as `("probe", k, "sequence")`.
Fetches = dict[tuple[Any, ...], Any]
# Each cell's weights as numpy arrays: `{scope: {weight name: array}}`.
Arrays = Mapping[str, Mapping[str, np.ndarray]]


def check_probe(probe: Any) -> dict[Any, Any]:
    """The probe feed dict, checked; raises ValueError naming what is wrong."""
    if not isinstance(probe, dict) or not probe:
        raise ValueError(
            "probe must be a feed dict for the model's placeholders, e.g. {x: ids[:16], lengths: n[:16]}, "
            "got %r" % type(probe).__name__
        )
    return probe


class TF1Probe:
    """Fetches what the probe needs with the weights, and turns it into one `Trace` per cell.

    Args:
      graph: the graph holding the cells.
      cells: the logged `scopes.Cell`s (from `graph_cells`).
      feed: the probe's feed dict.
      probe_tokens: None, or the probe's tokens (see `tb_lstm_gates.logs.tokens`).
      mapping: `probe_inputs` as the hook and `log_session` take it.
    """

    def __init__(
        self,
        graph: tf.Graph,
        cells: list[scopes.Cell],
        feed: dict[Any, Any],
        probe_tokens: tokens.ProbeTokens | None = None,
        mapping: Mapping[str, Any] | None = None,
    ) -> None:
        self.feed = check_probe(feed)
        self.cells = cells
        self.runs, unfound = probe_inputs.find_runs(graph, cells, mapping)
        self._configs = {layer: c for run in self.runs for layer, c in run.configs.items()}
        bad = ["%s (%s)" % (layer, why) for layer, why in self._configs.items() if isinstance(why, str)]
        if unfound or bad:
            warnings.warn(
                "tb-lstm-gates computes no probe activations for %s: %s"
                % (
                    ", ".join(unfound + bad),
                    "no dynamic_rnn loop runs %s (a static_rnn or a Python loop); pass "
                    "probe_inputs={scope: its batch-major input tensor (batch, time, depth)}"
                    % ("it" if len(unfound) == 1 else "them")
                    if unfound
                    else "its settings cannot be read from the graph",
                ),
                stacklevel=callers.user_stacklevel(),
            )
        skip = {b.split(" ")[0] for b in bad}
        self.runs = [r for r in self.runs if not any(c.layer in skip for c in r.cells)]
        self.tokens: list[list[str]] | None = None
        ids = next((np.asarray(v) for v in feed.values() if np.ndim(v) >= 2), None)
        if probe_tokens is not None:
            self.tokens = tokens.check_probe_tokens(probe_tokens, ids)
        self._phase_of_runs(feed)

    def _phase_of_runs(self, feed: dict[Any, Any]) -> None:
        """Puts each run in a phase: a run reading the outputs of a loop with random ops inside is fed
        the outputs the probe computed for that loop (in a later `session.run`), so the loop never runs."""
        by_loop = {run.loop: k for k, run in enumerate(self.runs) if run.loop and run.stack is not None}
        self.phase: dict[int, int] = {}
        problems: tuple[list[str], list[str], list[str]] = ([], [], [])
        pending = list(range(len(self.runs)))
        while pending:
            progressed = False
            for k in list(pending):
                loops = probe_inputs.check_side_effects(self._tensors(self.runs[k]), feed)[2]
                waiting = [by_loop[loop] for loop in loops if loop in by_loop and by_loop[loop] != k]
                if any(j not in self.phase for j in waiting):
                    continue
                self.phase[k] = 1 + max((self.phase[j] for j in waiting), default=-1)
                # What the run does, with the loops it waits for fed.
                fed = dict(feed)
                fed.update((self.runs[j].stack, None) for j in waiting if self.runs[j].outputs is None)
                found = probe_inputs.check_side_effects(self._tensors(self.runs[k]), fed)
                for listed, names in zip(problems, found):
                    listed.extend(n for n in names if n not in listed and n not in by_loop)
                pending.remove(k)
                progressed = True
            if not progressed:  # a cycle cannot happen in a graph; stay safe
                self.phase.update((k, 0) for k in pending)
                break
        iterators, random_ops, loops = problems
        if iterators:
            raise ValueError(
                "the probe would read the next batch from %s, which training reads: feed the tensors it "
                "outputs (e.g. {next_batch[0]: ids, next_batch[1]: lengths}) in probe=" % ", ".join(iterators)
            )
        if random_ops or loops:
            warnings.warn(
                "tb-lstm-gates's probe runs %s, which moves their random generators on: feed the tensor after "
                "them in probe= to keep training's random numbers unchanged" % ", ".join(random_ops + loops),
                stacklevel=callers.user_stacklevel(),
            )

    @staticmethod
    def _tensors(run: probe_inputs.Run) -> list[tf.Tensor]:
        out = [run.sequence] + list(run.states or [])
        out += [t for t in (run.lengths, run.outputs) if t is not None]
        if isinstance(run.reversed_by, tf.Tensor):
            out.append(run.reversed_by)
        return out

    def fetches(self, phase: int = 0) -> Fetches:
        """`{key: tensor}`, to fetch in the same `session.run` as the weights (phase 0)."""
        fetches: Fetches = {}
        for k, run in enumerate(self.runs):
            if self.phase[k] != phase:
                continue
            fetches["probe", k, "sequence"] = run.sequence
            if run.lengths is not None:
                fetches["probe", k, "lengths"] = run.lengths
            if isinstance(run.reversed_by, tf.Tensor):
                fetches["probe", k, "reversed_by"] = run.reversed_by
            for j, state in enumerate(run.states or []):
                fetches["probe", k, "state", j] = state
            if run.outputs is not None:
                fetches["probe", k, "outputs"] = run.outputs
        return fetches

    # `session`: a `tf.compat.v1.Session`, or None where no run has a later phase.
    def traces(self, values: Fetches, arrays: Arrays, session: Any = None) -> list[tuple[scopes.Cell, Trace]]:
        """`[(cell, Trace)]` from the fetched `values` and each cell's weights `arrays[scope]`.

        `session` runs the later phases (see `_phase_of_runs`), if any.
        """
        per_cell: dict[str, list[Trace]] = {}
        computed: dict[int, np.ndarray] = {}
        for phase in range(1 + max(self.phase.values(), default=0)):
            if phase:
                feed = dict(self.feed)
                # Only loops with random ops inside are replaced by what the probe computed for them.
                feed.update(
                    (self.runs[k].stack, computed[k]) for k in computed if self.runs[k].outputs is None
                )
                values = dict(values)
                values.update(session.run(self.fetches(phase), feed))
            for k, run in enumerate(self.runs):
                if self.phase[k] != phase:
                    continue
                traces, top = self._run_traces(k, run, values, arrays)
                computed[k] = np.swapaxes(top, 0, 1)
                for cell, trace in traces:
                    per_cell.setdefault(cell.layer, []).append(trace)
        return [(c, activations.concatenate(per_cell[c.layer])) for c in self.cells if c.layer in per_cell]

    def _run_traces(
        self, k: int, run: probe_inputs.Run, values: Fetches, arrays: Arrays
    ) -> tuple[list[tuple[scopes.Cell, Trace]], np.ndarray]:
        x = np.asarray(values["probe", k, "sequence"], np.float32)
        if not run.batch_major:
            x = np.swapaxes(x, 0, 1)
        batch, time = x.shape[:2]
        lengths = values.get(("probe", k, "lengths"))
        lengths = np.full(batch, time) if lengths is None else np.asarray(lengths).reshape(-1)
        valid = np.arange(time)[None, :] < lengths[:, None]
        states = [np.asarray(values["probe", k, "state", j]) for j in range(len(run.states or []))]
        out: list[tuple[scopes.Cell, Trace]] = []
        sequence = x
        for cell in run.cells:
            # `__init__` dropped the runs whose settings are a string (unreadable).
            config = dict(cast(dict[str, Any], self._configs[cell.layer]))
            if cell.layout.cell == "gru":
                own, states = states[:1], states[1:]
                trace = tf1_cells.gru(
                    cell.layout, arrays[cell.layer], sequence, valid, own or None, config["activation"]
                )
            else:
                own, states = states[:2], states[2:]
                trace = tf1_cells.lstm(
                    cell.layout, arrays[cell.layer], sequence, valid, own or None, **config
                )
            out.append((cell, trace))
            sequence = trace.outputs
        top = out[-1][1].outputs
        reference = values.get(("probe", k, "outputs"))
        if reference is not None:
            out[-1][1].reference_outputs = np.swapaxes(np.asarray(reference, np.float32), 0, 1)
        if run.reversed_by is not None:
            by = lengths if isinstance(run.reversed_by, str) else values["probe", k, "reversed_by"]
            out = [(cell, tf1_cells.reversed_trace(trace, by)) for cell, trace in out]
        return out, top

    def write(
        self, writer: summary.GateSummaryWriter, values: Fetches, arrays: Arrays, maps: bool, session: Any
    ) -> None:
        """Adds the probe's statistics (and activation maps and sequences if `maps`) to the writer's step."""
        if self.tokens is not None:
            writer.write_probe_tokens(self.tokens)
            self.tokens = None
        for cell, trace in self.traces(values, arrays, session):
            summary.write_probe_trace(writer, cell.layer, trace, maps)
