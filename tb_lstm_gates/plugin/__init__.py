"""The LSTM Gates tab of TensorBoard.

`loader.LSTMGatesLoader` is the entry point TensorBoard imports at start-up;
it stays light and imports `plugin.LSTMGatesPlugin`, the routes, when
TensorBoard loads the plugin. The routes' contract is `http_api.md`.
"""
