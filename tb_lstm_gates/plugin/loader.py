"""Entry point of the LSTM Gates tab: what TensorBoard imports at start-up.

Imports neither TensorFlow nor Keras (nor the routes, until TensorBoard
loads the plugin): an import error here would stop TensorBoard.
"""

from tensorboard.plugins import base_plugin

from tb_lstm_gates import metadata

# `--samples_per_plugin` value meaning "keep every point", for both the
# Python loader (a reservoir of size 0 is unbounded) and RustBoard
# (`server_ingester` passes 0 on as `all`).
KEEP_ALL = 0


class LSTMGatesLoader(base_plugin.TBLoader):
    """Loads `LSTMGatesPlugin` and makes TensorBoard keep all of its data.

    TensorBoard keeps only a sample of each series of a plugin it does not
    know (10 points in the Python loader, a random sample in RustBoard):
    the tab would show 10 epochs of 300. So unless the user set
    `--samples_per_plugin lstm_gates=N`, every point is kept.
    """

    def fix_flags(self, flags):
        hints = getattr(flags, "samples_per_plugin", None) or {}
        if metadata.PLUGIN_NAME not in hints:
            flags.samples_per_plugin = {**hints, metadata.PLUGIN_NAME: KEEP_ALL}

    def load(self, context):
        from tb_lstm_gates.plugin.plugin import LSTMGatesPlugin

        return LSTMGatesPlugin(context)
