"""Tests of the SemiMarkov layer: conformance (run_layer_test), agreement with
SemiMarkovChain (itself checked against enumeration), a Keras mask reaching it inside a user's
model, SavedModel export."""
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.distributions import SemiMarkovChain
from tflv.layers import SemiMarkov


def potentials(rng, b, t, max_len, k, with_length=True):
    shapes = [(b, k), (b, k, k), (b, t, max_len, k)] + ([(b, k, max_len)] if with_length else [])
    return [tf.constant(rng.normal(size=s), tf.float32) for s in shapes]


def test_conformance_and_values():
    rng = np.random.default_rng(40)
    b, t, max_len, k = 3, 5, 2, 4
    inputs = potentials(rng, b, t, max_len, k)
    log_z, segments, states = run_layer_test(
        SemiMarkov, dict(semiring="log"), inputs,
        expected_output_shape=((b,), (b, t, max_len, k), (b, t, k)))
    want = SemiMarkovChain(*inputs).posterior()
    np.testing.assert_allclose(log_z, want.log_partition, rtol=1e-5)
    np.testing.assert_allclose(segments, want.segments, atol=1e-5)
    np.testing.assert_allclose(states, want.states, atol=1e-5)
    np.testing.assert_allclose(np.sum(states, -1), 1.0, rtol=1e-5)


def test_takes_a_mask_inside_a_keras_model():
    """A bool mask input of a functional model reaches the layer; padding gets zero marginals."""
    rng = np.random.default_rng(41)
    b, t, max_len, k = 2, 6, 3, 2
    inputs = [keras.Input(shape=s) for s in ((k,), (k, k), (t, max_len, k))]
    mask_input = keras.Input(shape=(t,), dtype="bool")
    model = keras.Model(inputs + [mask_input], SemiMarkov()(inputs, mask=mask_input))
    data = [d.numpy() for d in potentials(rng, b, t, max_len, k, with_length=False)]
    mask = np.arange(t)[None] < np.array([6, 3])[:, None]
    got = model(data + [mask])
    want = SemiMarkovChain(*data).posterior(mask)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert np.all(got[2].numpy()[~mask] == 0.0)


def test_exports_to_saved_model():
    rng = np.random.default_rng(42)
    b, t, max_len, k = 2, 4, 2, 3
    inputs = [keras.Input(shape=(k,)), keras.Input(shape=(k, k)),
              keras.Input(shape=(None, max_len, k)), keras.Input(shape=(k, max_len))]
    model = keras.Model(inputs, SemiMarkov()(inputs))
    data = [d.numpy() for d in potentials(rng, b, t, max_len, k)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export")
        model.export(path, format="tf_saved_model", verbose=False)
        served = tf.saved_model.load(path).serve(data)
    for got, want in zip(tf.nest.flatten(served), tf.nest.flatten(model(data))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="semiring"):
        SemiMarkov(semiring="max")
    with pytest.raises(ValueError, match="2 inputs"):
        SemiMarkov()([tf.zeros([1, 2]), tf.zeros([1, 2, 2])])
