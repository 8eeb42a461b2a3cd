"""RNNDecoder: conformance, causality, latent conditioning, and its sampler's distribution."""
import numpy as np
import scipy.stats
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.layers.decoders import RNNDecoder


def test_conformance():
    run_layer_test(RNNDecoder, dict(vocab_size=11, embed_dim=4, hidden_dim=6),
                   tf.constant([[2, 5, 7], [2, 1, 0]]), expected_output_shape=(2, 3, 11))


def test_causal_and_padding_invariant():
    decoder = RNNDecoder(vocab_size=9, embed_dim=4, hidden_dim=5, num_layers=2)
    x = tf.constant([[2, 3, 4, 5, 6]])
    full = decoder(x).numpy()
    changed_future = decoder(tf.constant([[2, 3, 4, 8, 8]])).numpy()
    np.testing.assert_allclose(full[:, :3], changed_future[:, :3], rtol=1e-6, atol=1e-6)
    padded = decoder(tf.constant([[2, 3, 4, 0, 0]]), mask=tf.constant([[1., 1., 1., 0., 0.]]))
    np.testing.assert_allclose(full[:, :3], padded.numpy()[:, :3], rtol=1e-6, atol=1e-6)


def test_latent_changes_every_position_and_skip_connections_reach_output():
    decoder = RNNDecoder(vocab_size=9, embed_dim=4, hidden_dim=5, skip_connections=True)
    x = tf.constant([[2, 3, 4]])
    a = decoder(x, z=tf.constant([[1.0, -1.0]])).numpy()
    b = decoder(x, z=tf.constant([[-1.0, 1.0]])).numpy()
    assert np.all(np.abs(a - b).max(axis=-1) > 1e-4)
    # With skip connections the projection sees [h; z]: its kernel has H + Z rows.
    assert decoder.projection.kernel.shape == (5 + 2, 9)


def test_tied_embeddings_share_the_matrix():
    decoder = RNNDecoder(vocab_size=7, embed_dim=5, hidden_dim=5, tie_embeddings=True)
    decoder(tf.constant([[2, 3]]))
    names = {w.path for w in decoder.trainable_weights}
    assert not any("projection" in n for n in names)


def test_sampler_first_token_follows_the_softmax():
    decoder = RNNDecoder(vocab_size=5, embed_dim=3, hidden_dim=4)
    n = 4000
    start = tf.fill([n], 2)
    probs = tf.nn.softmax(tf.cast(decoder(start[:1, None])[0, 0], tf.float64)).numpy()
    draws = decoder.sample(start, 1, temperature=1.0, seed=tf.constant([3, 4])).numpy()[:, 0]
    counts = np.bincount(draws, minlength=5)
    _, p_value = scipy.stats.chisquare(counts, probs * n)
    assert p_value > 1e-3, (counts, probs * n)
    again = decoder.sample(start, 1, seed=tf.constant([3, 4])).numpy()[:, 0]
    np.testing.assert_array_equal(draws, again)
