"""Encoders: the layer conformance suite, padding invariance, the MLP by hand, word dropout's
replacement rate (a binomial z-test) and protected ids."""
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.layers import BagOfWordsEncoder, RNNEncoder, WordDropout

TOKENS = np.array([[5, 7, 9, 4, 0, 0], [6, 8, 4, 5, 7, 9]], np.int32)  # 0: <pad>


def test_rnn_encoder_conformance():
    run_layer_test(RNNEncoder, dict(vocab_size=12, embed_dim=4, hidden_dim=3), tf.constant(TOKENS),
                   expected_output_shape=(2, 3))
    run_layer_test(RNNEncoder, dict(vocab_size=12, embed_dim=4, hidden_dim=3, bidirectional=True,
                                    return_states=True),
                   tf.constant(TOKENS), expected_output_shape=((2, 6), (2, 6, 6)))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_encoder_ignores_padding(bidirectional):
    """Features of a padded row equal those of its unpadded prefix run alone."""
    encoder = RNNEncoder(vocab_size=12, embed_dim=4, hidden_dim=3, bidirectional=bidirectional,
                         return_states=True)
    features, states = encoder(tf.constant(TOKENS))
    alone, alone_states = encoder(tf.constant(TOKENS[:1, :4]))
    np.testing.assert_allclose(features[0], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states[0, :4], alone_states[0], rtol=1e-5, atol=1e-6)
    if not bidirectional:  # h_T is the state at the last real token
        np.testing.assert_allclose(features[0], states[0, 3], rtol=1e-6)
        np.testing.assert_allclose(features[1], states[1, 5], rtol=1e-6)


def test_bag_of_words_encoder_is_the_mlp():
    counts = tf.constant(np.random.RandomState(0).poisson(1.0, (3, 10)), tf.float32)
    run_layer_test(BagOfWordsEncoder, dict(hidden_units=[6, 5]), counts,
                   expected_output_shape=(3, 5))
    encoder = BagOfWordsEncoder(hidden_units=[6, 5], activation="tanh")
    out = encoder(counts).numpy()
    h = counts.numpy()
    for layer in encoder.mlp:
        h = np.tanh(h @ layer.kernel.numpy() + layer.bias.numpy())
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least one layer"):
        BagOfWordsEncoder(hidden_units=[])


def test_word_dropout_rate_and_protected_ids():
    run_layer_test(WordDropout, dict(rate=0.3, seed=1), tf.constant(TOKENS),
                   expected_output_shape=(2, 6), call_kwargs=dict(training=True))
    rng = np.random.RandomState(1)
    tokens = rng.randint(0, 20, size=(200, 50)).astype(np.int32)  # ids 0, 2, 3 protected
    layer = WordDropout(rate=0.3, seed=2)
    out = layer(tf.constant(tokens), training=True).numpy()
    protected = np.isin(tokens, [0, 2, 3])
    assert np.all(out[protected] == tokens[protected])
    changed = out[~protected] != tokens[~protected]
    assert np.all(out[~protected][changed] == 1)  # replaced by <unk>
    eligible = (~protected) & (tokens != 1)  # an <unk> replaced by <unk> is invisible
    n, hits = eligible.sum(), (out[eligible] == 1).sum()
    assert abs(hits - 0.3 * n) < 4 * np.sqrt(n * 0.3 * 0.7)
    np.testing.assert_array_equal(layer(tf.constant(tokens), training=False), tokens)
    with pytest.raises(ValueError, match="rate must be in"):
        WordDropout(rate=1.5)
