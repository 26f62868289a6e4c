"""The `tb-lstm-gates` command: `tb-lstm-gates import PATH... --logdir DIR [--run NAME]`
and `tb-lstm-gates report LOGDIR` (gate-health findings).

Imports TensorFlow and h5py only once a command runs, so `--help` is fast.
"""

import argparse
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from typing import IO, Any

PROG = "tb-lstm-gates"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Per-gate views of LSTM and GRU weights in TensorBoard."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    imp = commands.add_parser(
        "import",
        help="log the per-gate statistics of saved checkpoints, one step per checkpoint",
        description=(
            "Log the per-gate statistics of saved weights into a run of a log "
            "directory, one step per checkpoint: TF checkpoints (a prefix such "
            "as ckpt/model.ckpt-1000, TF1 or tf_keras), Keras .keras archives "
            "and .weights.h5 files, PyTorch .pt/.pth state_dicts and Lightning "
            ".ckpt files, or directories holding them (imported in "
            "step order). The step is, first that applies: --step; the "
            "checkpoint's global_step variable; the number after the prefix of "
            "a recognised name (epoch_03.weights.h5, model.10.keras, "
            "weights.05-0.32.weights.h5, ckpt-1000); its optimizer's iteration "
            "count. A checkpoint the run already holds at its step is skipped, "
            "so importing again adds only new checkpoints; other weights at a "
            "step the run holds are an error. Event files (e.g. of "
            "keras.callbacks.TensorBoard) cannot be imported: their histograms "
            "fuse the gates."
        ),
    )
    imp.add_argument("paths", nargs="+", metavar="PATH", help="checkpoint prefix, file or directory")
    imp.add_argument("--logdir", required=True, help="the log directory TensorBoard reads")
    imp.add_argument(
        "--run",
        help="run name inside the log directory (default: the name of the first "
        "PATH if it is a directory, else of the directory holding it)",
    )
    imp.add_argument("--step", type=int, help="step of a single checkpoint, over what it and its name tell")
    imp.add_argument("--no-histograms", action="store_true", help="write statistics only")
    _add_report_parser(commands)
    return parser


def default_run(path: str) -> str:
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        path = os.path.dirname(path)
    return os.path.basename(path) or "import"


# A line of TensorFlow's C++ log: `I0000 00:00:...` (absl) or `2025-09-17 14:44:05.157831: I ...`.
_TF_LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} |\d{4}-\d\d-\d\d [\d:.]+: ([IWEF]) )")
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow (if installed) with its C++ log level set, default 2 (errors only).

    A level the user set in TF_CPP_MIN_LOG_LEVEL stays. TensorFlow 2.19 and
    later print start-up lines (oneDNN, CUDA drivers) before their logging
    reads that level (tensorflow/tensorflow#100442), so stderr is captured
    while TensorFlow loads and only lines at or above the level are passed on.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    try:
        level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(tf_log_at_level(captured.read().decode(errors="replace"), level))
            sys.stderr.flush()


def tf_log_at_level(text: str, level: int) -> str:
    """The lines of `text` that TF_CPP_MIN_LOG_LEVEL=`level` lets through (0 all, 1 no I, 2 no W, 3 no E).

    A line that is not a log line (a continuation, a Python warning) goes
    with the log line above it, or through if there is none.
    """
    keep = True
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _TF_LOG_LINE.match(line)
        if match:
            keep = "IWEF".index(match.group(1) or match.group(2)) >= level
        elif line.startswith(_ABSL_NOTICE):
            keep = level < 2
        if keep:
            out.append(line)
    return "".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == REPORT:
        return _report(args)
    try:
        from tb_lstm_gates.checkpoints.importer import reads_tf_checkpoints

        if reads_tf_checkpoints(args.paths):
            # Only TF checkpoints need TensorFlow (a torch process must not pay
            # for it), and its C++ start-up chatter would bury our messages.
            import_tensorflow_quietly()
        return _import(args)
    except KeyboardInterrupt:
        print("%s: interrupted" % PROG, file=sys.stderr)
        return 130
    except Exception as e:
        from tb_lstm_gates.checkpoints import CheckpointError, one_line

        message = (
            one_line(e) if isinstance(e, CheckpointError) else "%s: %s" % (type(e).__name__, one_line(e))
        )
        print("%s: error: %s" % (PROG, message), file=sys.stderr)
        return 1


def _import(args: argparse.Namespace) -> int:
    from tb_lstm_gates import checkpoints

    run = args.run or default_run(args.paths[0])
    run_dir = os.path.join(args.logdir, run)
    found = checkpoints.find_checkpoints(args.paths, step=args.step)
    for ckpt in found:
        print("%s: step %d (%s)" % (ckpt.path, ckpt.step, ckpt.step_source))
    sys.stdout.flush()
    progress = _ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    written, skipped = checkpoints.import_checkpoints(
        found, run_dir, histograms=not args.no_histograms, progress=progress
    )
    message = "imported %d checkpoint%s into run %r of %s" % (
        len(written),
        "" if len(written) == 1 else "s",
        run,
        args.logdir,
    )
    if written:
        message += " (steps %s)" % _steps_text(written)
    if skipped:
        message += "; skipped %d the run already holds (steps %s)" % (len(skipped), _steps_text(skipped))
    print(message)
    return 0


def _steps_text(steps: Sequence[int]) -> str:
    return ", ".join(map(str, steps)) if len(steps) <= 6 else "%d..%d" % (steps[0], steps[-1])


class _ProgressBar:
    """A one-line progress bar on a terminal."""

    def __init__(self, stream: IO[str], width: int = 30) -> None:
        self._stream = stream
        self._width = width

    def __call__(self, done: int, total: int, path: str) -> None:
        filled = self._width * done // max(total, 1)
        line = "\r[%s%s] %d/%d %s" % (
            "#" * filled,
            "." * (self._width - filled),
            done,
            total,
            os.path.basename(path),
        )
        self._stream.write(line[:120].ljust(120) if done < total else "\r" + " " * 120 + "\r")
        self._stream.flush()


# `report`: gate-health findings (tb_lstm_gates.findings).

REPORT = "report"
# Exit status when the report cannot be made (no data, bad --set or --run),
# apart from 1, which --fail-on gives to findings.
REPORT_ERROR = 2


def _add_report_parser(commands: Any) -> None:
    from tb_lstm_gates import findings

    rep = commands.add_parser(
        REPORT,
        help="print gate-health findings of logged runs (what is wrong with my LSTM?)",
        description=(
            "Apply the gate-health rules (non-finite weights, update ratio, exploding norms, "
            "saturated or stuck gates, vanishing gate gradients, regularization share, spectral "
            "norm) to the runs of a log directory, live or finished, and print what they find. "
            "Exit status: 0; 1 when --fail-on is given and a finding at or above that severity "
            "exists; %d when the report cannot be made." % REPORT_ERROR
        ),
        epilog="thresholds (--set RULE.THRESHOLD=VALUE): "
        + "; ".join("%s=%g" % ("%s.%s" % key, value) for key, value in findings.default_settings().items()),
    )
    rep.add_argument("logdir", metavar="LOGDIR", help="the log directory TensorBoard reads")
    rep.add_argument("--run", action="append", metavar="R", help="only this run (repeat for several)")
    rep.add_argument(
        "--format", choices=findings.FORMATS, default="text", help="output format (default: text)"
    )
    rep.add_argument(
        "--fail-on",
        choices=findings.SEVERITIES,
        help="exit with status 1 if a finding at or above this severity exists",
    )
    rep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RULE.THRESHOLD=VALUE",
        dest="settings",
        help="override a rule's threshold, e.g. update_ratio_high.max=0.5 (repeatable)",
    )


def _report(args: argparse.Namespace) -> int:
    from tb_lstm_gates import findings
    from tb_lstm_gates.logs import reader

    try:
        settings = findings.parse_settings(args.settings)
        records = reader.load(args.logdir)
    except (ValueError, FileNotFoundError) as e:
        print("%s report: error: %s" % (PROG, e), file=sys.stderr)
        return REPORT_ERROR
    runs = sorted({r.run for r in records})
    if not runs:
        print("%s report: error: no tb-lstm-gates data under %s" % (PROG, args.logdir), file=sys.stderr)
        return REPORT_ERROR
    if args.run:
        unknown = sorted(set(args.run) - set(runs))
        if unknown:
            print(
                "%s report: error: no tb-lstm-gates data for run(s) %s; the runs are %s"
                % (PROG, ", ".join(map(repr, unknown)), ", ".join(map(repr, runs))),
                file=sys.stderr,
            )
            return REPORT_ERROR
        records = [r for r in records if r.run in set(args.run)]
    found = findings.check(records, settings)
    print(findings.format_findings(found, args.format))
    return 1 if args.fail_on and findings.at_or_above(found, args.fail_on) else 0


if __name__ == "__main__":
    sys.exit(main())
