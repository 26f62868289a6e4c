"""The probe's self-check with tf_keras (TF_USE_LEGACY_KERAS=1): healthy layers pass, a planted cell is found."""

import warnings

import numpy as np
import tf_keras

import tb_lstm_gates
from tb_lstm_gates import findings
from tb_lstm_gates.core import selfcheck
from tb_lstm_gates.logs import metadata

RNG = np.random.default_rng(26)


class HalvedInputCell(tf_keras.layers.LSTMCell):
    """Feeds its gates half its inputs: a custom `call` the logger cannot see."""

    def call(self, inputs, states, training=None):
        return super().call(inputs * 0.5, states, training=training)


def test_tf_keras_layers_pass_and_a_planted_cell_is_found(tmp_path):
    tf_keras.backend.clear_session()
    inputs = tf_keras.Input((6, 3))
    masked = tf_keras.layers.Masking()(inputs)
    seq = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(4, return_sequences=True), name="bi")(masked)
    seq = tf_keras.layers.GRU(3, go_backwards=True, return_sequences=True, name="gru")(seq)
    out = tf_keras.layers.RNN(HalvedInputCell(2), name="planted")(seq)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(out))
    model.compile("adam", "mse")
    x, y = RNG.normal(size=(8, 6, 3)).astype("float32"), RNG.normal(size=(8, 1)).astype("float32")
    x[0, 4:] = 0.0  # masked steps
    callback = tb_lstm_gates.LSTMGatesCallback(str(tmp_path), probe=x[:4])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    ours = [str(w.message) for w in caught if "tb-lstm-gates" in str(w.message)]
    assert len(ours) == 1 and "planted/" in ours[0], ours
    records = tb_lstm_gates.load(str(tmp_path))
    checked = {}
    for r in records:
        if r.stat == metadata.SELF_CHECK:
            checked.setdefault(r.layer.split("/")[0], []).append(r.value)
    assert sorted(checked) == ["bi", "gru", "planted"]
    assert max(checked["bi"] + checked["gru"]) < 1e-5
    assert min(checked["planted"]) > selfcheck.TOLERANCE
    found = [f["layer"] for f in findings.check(records) if f["rule"] == "weights_mismatch"]
    assert [layer.split("/")[0] for layer in found] == ["planted"]
