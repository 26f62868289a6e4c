"""Keras 3 model structures built from small specs, for the property-based tests of every cell.

A spec is plain data (tuples, strings, ints), so hypothesis can draw it and
a worker process can rebuild the same model from its `repr`:

- block: `("lstm" | "gru", units, activation, recurrent_activation, go_backwards)`,
  `("bidirectional", block)`, `("stacked", units, activation)`,
  `("time_distributed", block)`, `("loop", units, activation)` (a cell stepped in
  a Python loop), `("shared", units, activation)` (one cell through an `RNN` and
  stepped in a loop), or a container: `("attribute" | "list" | "dict" |
  "sequential" | "functional", [blocks])`.
- model: `(kind, [blocks])`, kind `functional`, `sequential` or `subclassed`.

Every block maps `(batch, T, features)` to `(batch, T, units)`.
"""

import keras

T, FEATURES = 3, 2
ACTIVATIONS = (
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "linear",
    "elu",
    "gelu",
    "silu",
    "softsign",
    "softplus",
    "selu",
    "relu6",
    "leaky_relu",
    "mish",
    "hard_silu",
    "exponential",
    "custom",
)


# Registered: `Bidirectional` rebuilds its layer from its config.
@keras.saving.register_keras_serializable("tb_lstm_gates_tests")
def custom_activation(x):
    """A user's own activation: Keras has no such function."""
    return keras.ops.tanh(x) * 0.5 + 0.1 * x


def activation(name):
    return custom_activation if name == "custom" else name


class Holder(keras.layers.Layer):
    """A custom layer holding its blocks as an attribute, in a list or in a dict."""

    def __init__(self, how, blocks, **kwargs):
        super().__init__(**kwargs)
        self.how = how
        if how == "attribute":
            self.first = blocks[0]
            self.rest = blocks[1:]
        elif how == "list":
            self.blocks = list(blocks)
        else:
            self.blocks = {"b%d" % i: b for i, b in enumerate(blocks)}

    def ordered(self):
        if self.how == "attribute":
            return [self.first] + list(self.rest)
        return list(self.blocks.values()) if self.how == "dict" else self.blocks

    def call(self, x):
        for block in self.ordered():
            x = block(x)
        return x


class Loop(keras.layers.Layer):
    """A cell stepped over time in a Python loop; with `shared`, the same cell also runs through an RNN."""

    def __init__(self, units, act, shared=False, **kwargs):
        super().__init__(**kwargs)
        self.cell = keras.layers.LSTMCell(units, activation=activation(act))
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True) if shared else None

    def call(self, x):
        batch = keras.ops.shape(x)[0]
        units = self.cell.units
        state = [keras.ops.zeros((batch, units)), keras.ops.zeros((batch, units))]
        outputs = []
        for t in range(T):
            h, state = self.cell(x[:, t], states=state)
            outputs.append(h)
        y = keras.ops.stack(outputs, axis=1)
        return y if self.rnn is None else y + self.rnn(x)


def block(spec, features):
    """`(layer, units out)` of one block spec on inputs of `features` features."""
    kind = spec[0]
    if kind in ("lstm", "gru"):
        _, units, act, rec, backwards = spec
        layer_class = keras.layers.LSTM if kind == "lstm" else keras.layers.GRU
        layer = layer_class(
            units,
            activation=activation(act),
            recurrent_activation=activation(rec),
            go_backwards=backwards,
            return_sequences=True,
        )
        return layer, units
    if kind == "bidirectional":
        # Keras wants the forward layer to read forwards.
        inner, units = block(spec[1][:4] + (False,), features)
        return keras.layers.Bidirectional(inner), 2 * units
    if kind == "stacked":
        _, units, act = spec
        cells = [keras.layers.LSTMCell(units, activation=activation(act)), keras.layers.GRUCell(units)]
        return keras.layers.RNN(keras.layers.StackedRNNCells(cells), return_sequences=True), units
    if kind == "time_distributed":
        inner, units = block(spec[1], features)
        # Each step becomes a sequence of one step for the inner recurrent layer.
        return keras.Sequential(
            [
                keras.layers.Reshape((T, 1, features)),
                keras.layers.TimeDistributed(inner),
                keras.layers.Reshape((T, -1)),
            ]
        ), units
    if kind in ("loop", "shared"):
        _, units, act = spec
        return Loop(units, act, shared=kind == "shared"), units
    inp = keras.Input((T, features))
    layers = []
    for child in spec[1]:
        layer, features = block(child, features)
        layers.append(layer)
    if kind in ("attribute", "list", "dict"):
        return Holder(kind, layers), features
    if kind == "sequential":
        return keras.Sequential(layers), features
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x), features


class Subclassed(keras.Model):
    def __init__(self, layers, **kwargs):
        super().__init__(**kwargs)
        self.body = layers
        self.head = keras.layers.Dense(1)

    def call(self, x):
        for layer in self.body:
            x = layer(x)
        return self.head(x[:, -1])


def model(spec):
    """A built, compiled Keras model of a model spec."""
    kind, specs = spec
    layers, features = [], FEATURES
    for child in specs:
        layer, features = block(child, features)
        layers.append(layer)
    if kind == "subclassed":
        built = Subclassed(layers)
        built(keras.ops.zeros((1, T, FEATURES)))
    else:
        tail = [keras.layers.Lambda(lambda x: x[:, -1]), keras.layers.Dense(1)]
        if kind == "sequential":
            built = keras.Sequential([keras.Input((T, FEATURES))] + layers + tail)
        else:
            inp = keras.Input((T, FEATURES))
            x = inp
            for layer in layers + tail:
                x = layer(x)
            built = keras.Model(inp, x)
    built.compile(keras.optimizers.SGD(0.05), "mse")
    return built
