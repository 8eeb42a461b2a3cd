"""CNNDecoder: conformance, exact causality and receptive field, latent conditioning, sampler."""
import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.layers.cnn_decoder import CNNDecoder


def test_conformance():
    run_layer_test(CNNDecoder, dict(vocab_size=11, embed_dim=4, hidden_dim=6, kernel_size=2,
                                    dilations=[1, 2]),
                   tf.constant([[2, 5, 7], [2, 1, 0]]), expected_output_shape=(2, 3, 11))


def test_causal_with_the_receptive_field_it_claims():
    # k = 2, dilations 1, 2: logits at t see inputs t-3 .. t (receptive field 4). Seeded, and
    # wide enough that no input change is hidden by ReLUs that happen to be off everywhere.
    keras.utils.set_random_seed(0)
    decoder = CNNDecoder(vocab_size=9, embed_dim=8, hidden_dim=16, kernel_size=2, dilations=[1, 2])
    assert decoder.receptive_field == 4
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, size=(1, 10))
    base = decoder(tf.constant(x)).numpy()
    for s in range(10):
        changed = x.copy()
        changed[0, s] = (x[0, s] + 1) % 9
        diff = np.abs(decoder(tf.constant(changed)).numpy() - base).max(axis=-1)[0]  # [T]
        np.testing.assert_array_equal(diff[:s], 0.0)  # nothing before s moves
        assert np.all(diff[s:s + 4] > 1e-6)  # positions s .. s+3 read it
        np.testing.assert_array_equal(diff[s + 4:], 0.0)  # beyond the receptive field: nothing


def test_latent_changes_every_position_and_skip_connections_reach_output():
    decoder = CNNDecoder(vocab_size=9, embed_dim=4, hidden_dim=5, dilations=[1],
                         skip_connections=True)
    x = tf.constant([[2, 3, 4]])
    a = decoder(x, z=tf.constant([[1.0, -1.0]])).numpy()
    b = decoder(x, z=tf.constant([[-1.0, 1.0]])).numpy()
    assert np.all(np.abs(a - b).max(axis=-1) > 1e-4)
    assert decoder.projection.kernel.shape == (5 + 2, 9)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dilations"):
        CNNDecoder(vocab_size=5, dilations=[1, 0])
    with pytest.raises(ValueError, match="kernel_size"):
        CNNDecoder(vocab_size=5, kernel_size=0)


def test_sampler_matches_the_decoder_conditionals():
    decoder = CNNDecoder(vocab_size=5, embed_dim=3, hidden_dim=4, dilations=[1, 2])
    n = 4000
    z = tf.tile(tf.constant([[0.5, -1.0]]), [n, 1])
    start = tf.fill([n], 2)
    draws = decoder.sample(start, 2, z=z, seed=tf.constant([3, 4])).numpy()  # [n, 2]
    # The second token given the first follows softmax(logits[1]) of the drawn prefix.
    first = int(np.bincount(draws[:, 0]).argmax())
    rows = draws[draws[:, 0] == first, 1]
    logits = decoder(tf.constant([[2, first]]), z=z[:1])[0, 1]
    probs = tf.nn.softmax(tf.cast(logits, tf.float64)).numpy()
    _, p_value = scipy.stats.chisquare(np.bincount(rows, minlength=5), probs * len(rows))
    assert p_value > 1e-3
    np.testing.assert_array_equal(draws, decoder.sample(start, 2, z=z,
                                                        seed=tf.constant([3, 4])).numpy())
