"""The `tb-lstm-gates` command: `tb-lstm-gates import PATH... --logdir DIR [--run NAME]`.

Imports TensorFlow and h5py only once a command runs, so `--help` is fast.
"""

import argparse
import os
import sys

PROG = "tb-lstm-gates"


def _parser():
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
            "step order). The step is the checkpoint's global_step variable, "
            "else the last number in its file name. Steps the run already "
            "holds are skipped, so importing again adds only new checkpoints."
        ),
    )
    imp.add_argument("paths", nargs="+", metavar="PATH", help="checkpoint prefix, file or directory")
    imp.add_argument("--logdir", required=True, help="the log directory TensorBoard reads")
    imp.add_argument(
        "--run",
        help="run name inside the log directory (default: the name of the first "
        "PATH if it is a directory, else of the directory holding it)",
    )
    imp.add_argument("--step", type=int, help="step of a single checkpoint whose name does not tell it")
    imp.add_argument("--no-histograms", action="store_true", help="write statistics only")
    return parser


def default_run(path):
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        path = os.path.dirname(path)
    return os.path.basename(path) or "import"


def main(argv=None):
    args = _parser().parse_args(argv)
    # TensorFlow's C++ start-up chatter would bury the command's own messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return _import(args)
    except KeyboardInterrupt:
        print("%s: interrupted" % PROG, file=sys.stderr)
        return 130
    except Exception as e:
        from tb_lstm_gates.checkpoints import CheckpointError, one_line

        message = one_line(e) if isinstance(e, CheckpointError) else "%s: %s" % (type(e).__name__, one_line(e))
        print("%s: error: %s" % (PROG, message), file=sys.stderr)
        return 1


def _import(args):
    from tb_lstm_gates import checkpoints

    run = args.run or default_run(args.paths[0])
    run_dir = os.path.join(args.logdir, run)
    found = checkpoints.find_checkpoints(args.paths, step=args.step)
    progress = _ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    written, skipped = checkpoints.import_checkpoints(
        found, run_dir, histograms=not args.no_histograms, progress=progress
    )
    message = "imported %d checkpoint%s into run %r of %s" % (
        len(written), "" if len(written) == 1 else "s", run, args.logdir,
    )
    if written:
        message += " (steps %s)" % _steps_text(written)
    if skipped:
        message += "; skipped %d already there (steps %s)" % (len(skipped), _steps_text(skipped))
    print(message)
    return 0


def _steps_text(steps):
    return ", ".join(map(str, steps)) if len(steps) <= 6 else "%d..%d" % (steps[0], steps[-1])


class _ProgressBar:
    """A one-line progress bar on a terminal."""

    def __init__(self, stream, width=30):
        self._stream = stream
        self._width = width

    def __call__(self, done, total, path):
        filled = self._width * done // max(total, 1)
        line = "\r[%s%s] %d/%d %s" % (
            "#" * filled, "." * (self._width - filled), done, total, os.path.basename(path)
        )
        self._stream.write(line[:120].ljust(120) if done < total else "\r" + " " * 120 + "\r")
        self._stream.flush()


if __name__ == "__main__":
    sys.exit(main())
