"""Entry point of the LSTM Gates tab: what TensorBoard imports at start-up.

Imports neither TensorFlow nor Keras (nor the routes, until TensorBoard
loads the plugin): an import error here would stop TensorBoard.
"""

from tensorboard.plugins import base_plugin

from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import limits

# Re-exported: `loader.SAMPLES_CAP` is where the docs and users find it.
SAMPLES_CAP = limits.SAMPLES_CAP


class LSTMGatesLoader(base_plugin.TBLoader):
    """Loads `LSTMGatesPlugin` and makes TensorBoard keep up to `SAMPLES_CAP` points per series.

    TensorBoard keeps only a sample of each series of a plugin it does not
    know (10 points in the Python loader, a random sample in RustBoard):
    the tab would show 10 epochs of 300. So unless the user set
    `--samples_per_plugin lstm_gates=N`, `SAMPLES_CAP` points are kept.
    """

    def fix_flags(self, flags):
        hints = getattr(flags, "samples_per_plugin", None) or {}
        if metadata.PLUGIN_NAME not in hints:
            flags.samples_per_plugin = {**hints, metadata.PLUGIN_NAME: SAMPLES_CAP}

    def load(self, context):
        from tb_lstm_gates.plugin.plugin import LSTMGatesPlugin

        return LSTMGatesPlugin(context)
