"""The Keras wing: `LSTMGatesCallback`, the probe, `GateRegularizer`, `gate_blocks`.

For Keras 3 on any backend and for tf_keras. `discover` finds the cells of a
model, `callback` logs them while it trains, `probe` / `probe_run` /
`probe_calls` compute gate activations on a probe batch without changing
training, `regularizers` and `penalties` add and log gate-wise penalties,
`blocks` splits a cell's variables into gate blocks as tensors.

Imports within the package are absolute, so `import keras` inside this
package is always the Keras package.
"""
