"""Tests of the structured-inference layers: conformance (run_layer_test), agreement with the
distributions they wrap, Keras mask propagation inside a user's model, SavedModel export."""
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.distributions import HMM, FactorialHMM
from tflv.layers import ForwardAlgorithm, MeanField


def chain_potentials(rng, b, t, k):
    return [tf.constant(rng.normal(size=s), tf.float32)
            for s in ((b, k), (b, t - 1, k, k), (b, t, k))]


def test_forward_algorithm_conformance_and_values():
    rng = np.random.default_rng(30)
    b, t, k = 3, 5, 4
    potentials = chain_potentials(rng, b, t, k)
    log_z, unary, pairwise = run_layer_test(
        ForwardAlgorithm, dict(per_step_transitions=True, semiring="log", pairwise=True), potentials,
        expected_output_shape=((b,), (b, t, k), (b, t - 1, k, k)))
    hmm = HMM.from_log_potentials(*potentials, per_step_transitions=True)
    np.testing.assert_allclose(log_z, hmm.log_prob(), rtol=1e-5)
    for got, want in zip((unary, pairwise), hmm.posterior_marginals()):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_forward_algorithm_takes_the_emission_mask_of_a_keras_model():
    """Inside a functional model, an Embedding(mask_zero=True) mask reaches the layer."""
    rng = np.random.default_rng(31)
    b, t, k, v = 2, 6, 3, 7
    tokens = keras.Input(shape=(t,), dtype="int32")
    initial = keras.Input(shape=(k,))
    transition = keras.Input(shape=(k, k))
    embed = keras.layers.Embedding(v, k, mask_zero=True)
    emission = embed(tokens)
    log_z, unary = ForwardAlgorithm()([initial, transition, emission])
    model = keras.Model([tokens, initial, transition], [log_z, unary])
    x = np.array([[3, 1, 4, 1, 5, 0], [2, 6, 0, 0, 0, 0]], np.int32)
    init, trans = (rng.normal(size=s).astype(np.float32) for s in ((b, k), (b, k, k)))
    got_log_z, got_unary = model([x, init, trans])
    hmm = HMM.from_log_potentials(init, trans, tf.gather(embed.embeddings.numpy(), x))
    np.testing.assert_allclose(got_log_z, hmm.log_prob(mask=x > 0), rtol=1e-5)
    np.testing.assert_allclose(got_unary, hmm.posterior(mask=x > 0).unary, atol=1e-5)
    assert np.all(got_unary.numpy()[x == 0] == 0.0)


def test_mean_field_conformance_and_values():
    b, t, chains, k, v = 2, 5, 2, 3, 6
    x = tf.constant(np.random.default_rng(32).integers(0, v, size=(b, t)), tf.int32)
    kwargs = dict(num_chains=chains, num_states=k, vocab_size=v, num_iterations=3)
    elbo, marginals = run_layer_test(MeanField, kwargs, x,
                                     expected_output_shape=((b,), (b, t, chains, k)))
    layer = MeanField(**kwargs)
    elbo, _ = layer(x)
    fhmm = FactorialHMM(*(w.numpy() for w in (layer.initial_logits, layer.transition_logits,
                                               layer.emission_logits)))
    np.testing.assert_allclose(elbo, fhmm.elbo(x, num_iterations=3), rtol=1e-5)
    assert np.all(elbo.numpy() <= fhmm.log_prob(x).numpy() + 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("make", ["forward", "mean_field"])
def test_layers_export_to_saved_model(make):
    rng = np.random.default_rng(33)
    b, t, k = 2, 4, 3
    if make == "forward":
        inputs = [keras.Input(shape=(k,)), keras.Input(shape=(None, k, k)),
                  keras.Input(shape=(None, k))]
        model = keras.Model(inputs, ForwardAlgorithm(per_step_transitions=True)(inputs))
        data = [d.numpy() for d in chain_potentials(rng, b, t, k)]
    else:
        inputs = keras.Input(shape=(None,), dtype="int32")
        model = keras.Model(inputs, MeanField(2, k, 5, num_iterations=2)(inputs))
        data = rng.integers(0, 5, size=(b, t)).astype(np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export")
        model.export(path, format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(path)
        served = loaded.serve(data)
    for got, want in zip(tf.nest.flatten(served), tf.nest.flatten(model(data))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="semiring"):
        ForwardAlgorithm(semiring="max")
    with pytest.raises(ValueError, match="num_states"):
        MeanField(num_chains=2, num_states=0, vocab_size=4)


@pytest.mark.parametrize("length", [pytest.param(0, marks=pytest.mark.slow), 1])
def test_layers_take_zero_and_one_step_inputs_of_unknown_length(length):
    """A traced call whose longest input has T <= 1 (T unknown when the graph is built) failed
    with "Tried to stack elements of an empty list"; T = 0 gives log Z = 0 (the empty path)."""
    rng = np.random.default_rng(34)
    b, k, v = 2, 3, 5
    forward = ForwardAlgorithm(per_step_transitions=True)
    mean_field = MeanField(2, k, v, num_iterations=2)

    @tf.function(input_signature=[tf.TensorSpec([None, k]), tf.TensorSpec([None, None, k, k]),
                                  tf.TensorSpec([None, None, k]),
                                  tf.TensorSpec([None, None], tf.int32)])
    def run(initial, transition, emission, tokens):
        return forward([initial, transition, emission]), mean_field(tokens)

    potentials = [rng.normal(size=s).astype(np.float32)
                  for s in ((b, k), (b, 0, k, k), (b, length, k))]
    tokens = rng.integers(0, v, size=(b, length)).astype(np.int32)
    (log_z, unary), (elbo, marginals) = run(*potentials, tokens)
    assert unary.shape == (b, length, k) and marginals.shape == (b, length, 2, k)
    fhmm = FactorialHMM(*(w.numpy() for w in (mean_field.initial_logits,
                                               mean_field.transition_logits,
                                               mean_field.emission_logits)))
    if length == 0:
        np.testing.assert_array_equal(log_z, 0.0)
        np.testing.assert_array_equal(elbo, 0.0)
    else:  # one position: log Z = logsumexp(initial + emission); the bound is below log p
        np.testing.assert_allclose(log_z, tf.reduce_logsumexp(potentials[0] + potentials[2][:, 0],
                                                              -1), rtol=1e-6)
        np.testing.assert_allclose(unary[:, 0], tf.nn.softmax(potentials[0] + potentials[2][:, 0]),
                                   atol=1e-6)
        assert np.all(elbo.numpy() <= fhmm.log_prob(tokens).numpy() + 1e-5)
