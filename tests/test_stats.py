"""Per-gate statistics and histograms against plain numpy on each block."""

import numpy as np
import pytest

from tb_lstm_gates.core import layouts, stats

RNG = np.random.default_rng(1)


def blocks_of(view):
    return [view[..., g, :] for g in range(view.shape[-2])]


@pytest.mark.parametrize("shape", [(7, 4 * 5), (4 * 5,), (3, 2, 6, 4 * 5)])
def test_every_stat_equals_numpy_on_each_block(shape):
    w = RNG.normal(size=shape).astype("float32")
    view = layouts.gate_view(w, layouts.keras_lstm().weights["kernel"][0])
    got = stats.gate_stats(view)
    for g, block in enumerate(blocks_of(view)):
        b = block.astype(np.float64)
        expected = {
            "l2": np.linalg.norm(b),
            "mean": b.mean(),
            "std": b.std(),
            "min": b.min(),
            "max": b.max(),
            "mean_abs": np.abs(b).mean(),
            "max_abs": np.abs(b).max(),
            "nonfinite": 0,
        }
        for stat, value in expected.items():
            np.testing.assert_allclose(got[stat][g], value, rtol=1e-6, atol=1e-9, err_msg=stat)


def test_update_ratio_is_relative_change_of_each_block():
    before = RNG.normal(size=(6, 12)).astype("float32")
    after = before.copy()
    after[:, 4:8] *= 1.5  # only the second of three 4-unit gates moves
    piece = layouts.keras_gru(False).weights["kernel"][0]
    got = stats.gate_stats(layouts.gate_view(after, piece), layouts.gate_view(before, piece))
    np.testing.assert_allclose(got["update_ratio"], [0, 0.5, 0], atol=1e-7)


def test_nonfinite_values_are_counted_and_left_out_of_other_stats():
    w = RNG.normal(size=(5, 8)).astype("float32")
    w[0, 0] = np.nan
    w[1, 1] = np.inf
    w[2, 4:6] = -np.inf
    view = layouts.gate_view(w, layouts.Piece("input", ("a", "b")))
    got = stats.gate_stats(view)
    np.testing.assert_array_equal(got["nonfinite"], [2, 2])
    first = w[:, :4][np.isfinite(w[:, :4])].astype(np.float64)
    np.testing.assert_allclose(got["l2"][0], np.linalg.norm(first), rtol=1e-6)
    np.testing.assert_allclose(got["mean"][0], first.mean(), rtol=1e-6)
    np.testing.assert_allclose(got["max_abs"][0], np.abs(first).max(), rtol=1e-6)
    hist = stats.gate_histograms(view, bins=10)
    np.testing.assert_array_equal(hist[:, :, 2].sum(axis=1), [18, 18])


def test_all_nonfinite_gate_gives_nan_stats_and_an_empty_histogram():
    w = np.full((2, 4), np.nan, "float32")
    w[:, 2:] = 1.0
    view = layouts.gate_view(w, layouts.Piece("input", ("a", "b")))
    got = stats.gate_stats(view)
    assert np.isnan(got["l2"][0]) and got["nonfinite"][0] == 4
    np.testing.assert_allclose(got["l2"][1], 2.0)
    hist = stats.gate_histograms(view, bins=4)
    np.testing.assert_array_equal(hist[:, :, 2].sum(axis=1), [0, 4])


def test_histograms_match_numpy_histogram_per_gate():
    w = RNG.normal(size=(50, 3 * 20)).astype("float32")
    view = layouts.gate_view(w, layouts.keras_gru(False).weights["kernel"][0])
    hist = stats.gate_histograms(view, bins=12)
    assert hist.shape == (3, 12, 3)
    for g, block in enumerate(blocks_of(view)):
        counts, edges = np.histogram(block, bins=12, range=(block.min(), block.max()))
        np.testing.assert_allclose(hist[g, :, 0], edges[:-1], rtol=1e-5)
        np.testing.assert_allclose(hist[g, :, 1], edges[1:], rtol=1e-5)
        # Floating-point edges may move a value on a boundary by one bucket.
        assert np.abs(hist[g, :, 2] - counts).sum() <= 2
        assert hist[g, :, 2].sum() == block.size


def test_constant_block_histogram_has_unit_range_around_the_value():
    view = layouts.gate_view(np.zeros(8, "float32"), layouts.Piece("bias", ("a", "b")))
    hist = stats.gate_histograms(view, bins=5)
    np.testing.assert_allclose(hist[0, 0, 0], -0.5)
    np.testing.assert_allclose(hist[0, -1, 1], 0.5)
    assert hist[0, :, 2].sum() == 4


def test_update_ratio_rejects_a_changed_shape():
    with pytest.raises(ValueError, match="changed shape"):
        stats.update_ratio(np.zeros((2, 2, 3)), np.zeros((3, 2, 3)))


@pytest.mark.parametrize("units", [1, 3, 16, 64])
def test_spectral_norm_is_the_largest_singular_value_of_each_block(units):
    w = RNG.normal(size=(units, 4 * units)).astype("float32")
    view = layouts.gate_view(w, layouts.keras_lstm().weights["recurrent_kernel"][0])
    got = stats.spectral_norm(view)
    expected = [np.linalg.norm(block.astype(np.float64), 2) for block in blocks_of(view)]
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    assert np.all(got <= np.array(expected) * (1 + 1e-6)), "power iteration bounds the norm from below"


def test_spectral_norm_of_known_matrices():
    units = 5
    blocks = [np.diag([3.0, 1, 1, 1, 1]), np.eye(units), np.zeros((units, units)), 2 * np.eye(units)[::-1]]
    w = np.concatenate(blocks, axis=1).astype("float32")
    view = layouts.gate_view(w, layouts.keras_lstm().weights["recurrent_kernel"][0])
    np.testing.assert_allclose(stats.spectral_norm(view), [3, 1, 0, 2], rtol=1e-6)


def test_spectral_norm_is_nan_only_for_blocks_holding_nonfinite_values():
    w = RNG.normal(size=(6, 18)).astype("float32")
    w[2, 7] = np.inf
    view = layouts.gate_view(w, layouts.keras_gru(False).weights["recurrent_kernel"][0])
    got = stats.spectral_norm(view)
    assert np.isnan(got[1])
    np.testing.assert_allclose(
        got[[0, 2]], [np.linalg.norm(w[:, :6], 2), np.linalg.norm(w[:, 12:], 2)], rtol=1e-3
    )


def test_spectral_norm_of_non_square_blocks_flattens_leading_axes_into_rows():
    w = RNG.normal(size=(2, 3, 4 * 5))
    view = layouts.gate_view(w, layouts.keras_lstm().weights["kernel"][0])
    expected = [np.linalg.norm(block.reshape(6, 5), 2) for block in blocks_of(view)]
    np.testing.assert_allclose(stats.spectral_norm(view), expected, rtol=1e-3)


def _drifting_recurrent_kernels(init, steps, drift):
    """Recurrent kernels (64 units) that drift by `drift` (relative, per entry) at each step, as in training."""
    rng = np.random.default_rng(3)
    if init == "orthogonal":  # Keras's recurrent initializer
        w = np.linalg.qr(rng.standard_normal((4 * 64, 64)))[0].T
    else:
        w = rng.standard_normal((64, 4 * 64)) / 8
    for _ in range(steps):
        yield layouts.gate_view(w.astype("float32"), layouts.keras_lstm().weights["recurrent_kernel"][0])
        w = w + drift * w.std() * rng.standard_normal(w.shape)


@pytest.mark.parametrize("init", ["orthogonal", "normal"])
@pytest.mark.parametrize("drift", [1e-3, 1e-2])
def test_warm_started_spectral_norm_stays_within_its_tolerance_on_drifting_weights(init, drift):
    assert stats.SPECTRAL_TOLERANCE == 1e-3  # the tolerance the README and the docstrings promise
    vectors = None
    for view in _drifting_recurrent_kernels(init, 40, drift):
        got, vectors = stats.top_singular(view, vectors)
        expected = [np.linalg.norm(block.astype(np.float64), 2) for block in blocks_of(view)]
        np.testing.assert_allclose(got, expected, rtol=stats.SPECTRAL_TOLERANCE)
        assert np.all(got <= np.array(expected) * (1 + 1e-6))


@pytest.mark.parametrize(
    "jump",
    [
        lambda w, rng: rng.standard_normal(w.shape).astype("float32"),  # re-initialized
        lambda w, rng: (
            w
            + 2
            * np.linalg.norm(w, 2)
            * np.outer(rng.standard_normal(len(w)), rng.standard_normal(w.shape[1]))
            / len(w)
        ),
        lambda w, rng: -3 * w,
    ],
    ids=["reinitialized", "rank_one_spike", "scaled"],
)
def test_spectral_norm_after_a_sudden_jump_is_within_its_tolerance(jump):
    rng = np.random.default_rng(4)
    view = next(_drifting_recurrent_kernels("orthogonal", 1, 0))
    _, vectors = stats.top_singular(view)
    w = jump(view.reshape(64, 4 * 64), rng).astype("float32")
    jumped = layouts.gate_view(w, layouts.keras_lstm().weights["recurrent_kernel"][0])
    got, _ = stats.top_singular(jumped, vectors)
    expected = [np.linalg.norm(block.astype(np.float64), 2) for block in blocks_of(jumped)]
    np.testing.assert_allclose(got, expected, rtol=stats.SPECTRAL_TOLERANCE)


def test_a_start_that_does_not_fit_the_blocks_is_ignored():
    view = next(_drifting_recurrent_kernels("normal", 1, 0))
    expected = stats.spectral_norm(view)
    np.testing.assert_allclose(stats.spectral_norm(view, np.ones((3, 64), np.float32)), expected)
    poisoned = view.copy()
    poisoned[0, 1, 0] = np.nan
    got, vectors = stats.top_singular(poisoned, stats.top_singular(view)[1])
    assert np.isnan(got[1]) and np.isfinite(np.delete(got, 1)).all()


def test_a_transposed_view_as_pytorch_stores_weights_has_the_statistics_of_its_copy():
    stored = RNG.normal(size=(4 * 16, 12)).astype("float32")  # PyTorch's (gates * units, inputs)
    previous = stored + RNG.normal(size=stored.shape).astype("float32") * 1e-2
    view, previous_view = (
        layouts.gate_view(w.T, layouts.torch_lstm().weights["weight_hh"][0]) for w in (stored, previous)
    )
    assert not view.flags.c_contiguous
    got, got_hist = stats.gate_summary(view, previous_view, bins=7)
    want, want_hist = stats.gate_summary(
        np.ascontiguousarray(view), np.ascontiguousarray(previous_view), bins=7
    )
    for stat in want:
        np.testing.assert_allclose(
            got[stat], want[stat], rtol=1e-5, atol=1e-6, err_msg=stat
        )  # float32 sums in another order
    np.testing.assert_array_equal(got_hist, want_hist)
    np.testing.assert_allclose(
        stats.spectral_norm(view),
        [np.linalg.norm(b.astype(np.float64), 2) for b in blocks_of(view)],
        rtol=1e-3,
    )
