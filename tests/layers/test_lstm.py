"""`tflv.layers.LSTM` (input projection of all steps before the recursion) computes what
`keras.layers.LSTM` computes, with the same weights: outputs, final states and gradients, under
masks (right-padded and with holes), `go_backwards`, `Bidirectional`, an initial state, float64,
XLA, and a mixed-precision policy; it defers to Keras' cell (and so its per-step dropout masks)
when the cell has dropout."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tflv.layers.lstm import LSTM

RNG = np.random.default_rng(0)
B, T, D, H = 3, 6, 5, 4
MASKS = {
    "none": None,
    "right-padded": np.arange(T)[None] < np.array([[6], [3], [1]]),
    "holes": RNG.uniform(size=(B, T)) < 0.6,
}


def twins(dtype="float32", **kwargs):
    """A Keras LSTM and ours with the same (random) weights."""
    theirs = keras.layers.LSTM(H, return_sequences=True, return_state=True, dtype=dtype,
                               **kwargs)
    ours = LSTM(H, return_sequences=True, return_state=True, dtype=dtype, **kwargs)
    theirs.build((B, T, D))
    ours.build((B, T, D))
    ours.set_weights([RNG.normal(size=w.shape) * 0.5 for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    return theirs, ours


def outputs_and_gradients(layer, x, mask, initial_state=None, jit=False):
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, mask=mask, initial_state=initial_state)
            loss = sum(tf.reduce_sum(tf.sin(o)) for o in outputs)
        return outputs, tape.gradient(loss, [x, *layer.trainable_variables])
    return tf.function(run, jit_compile=True)(x) if jit else run(x)


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_equals_keras_lstm_in_float64(mask, go_backwards):
    theirs, ours = twins("float64", go_backwards=go_backwards)
    x = tf.constant(RNG.normal(size=(B, T, D)))
    state = [tf.constant(RNG.normal(size=(B, H))) for _ in range(2)]
    mask = None if MASKS[mask] is None else tf.constant(MASKS[mask])
    expected, expected_grads = outputs_and_gradients(theirs, x, mask, state)
    got, got_grads = outputs_and_gradients(ours, x, mask, state)
    for a, b in zip([*expected, *expected_grads], [*got, *got_grads]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-12)


def test_equals_keras_lstm_under_xla_and_bidirectional():
    theirs, ours = (keras.layers.Bidirectional(layer) for layer in twins())
    x = tf.constant(RNG.normal(size=(B, T, D)), tf.float32)
    mask = tf.constant(MASKS["right-padded"])
    theirs(x), ours(x)
    ours.set_weights(theirs.get_weights())
    expected, expected_grads = outputs_and_gradients(theirs, x, mask)
    got, got_grads = outputs_and_gradients(ours, x, mask, jit=True)
    for a, b in zip([*expected, *expected_grads], [*got, *got_grads]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)


def test_mixed_precision_matches_keras_and_keeps_float32_weights():
    theirs, ours = twins("mixed_bfloat16")
    x = tf.constant(RNG.normal(size=(B, T, D)), tf.float32)
    expected, got = theirs(x)[0], ours(x)[0]
    assert got.dtype == expected.dtype == tf.bfloat16
    assert all(w.dtype == "float32" for w in ours.weights)
    np.testing.assert_allclose(tf.cast(got, tf.float32), tf.cast(expected, tf.float32), atol=0.03)


def test_cell_dropout_defers_to_keras():
    theirs, ours = twins(dropout=0.5, recurrent_dropout=0.5, seed=3)
    x = tf.constant(RNG.normal(size=(B, T, D)), tf.float32)
    # Same seed, same cell: Keras' per-step dropout masks are drawn, so the outputs agree.
    np.testing.assert_allclose(ours(x, training=True)[0], theirs(x, training=True)[0],
                               atol=1e-6)
    np.testing.assert_allclose(ours(x)[0], theirs(x)[0], atol=1e-6)  # no dropout at inference
