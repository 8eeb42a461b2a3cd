"""Greedy and beam search against exhaustive enumeration of every hypothesis on a tiny model;
temperature 0 of every ancestral sampler against greedy decoding of the same model."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from tflv.decoding import beam_search, greedy, length_penalty, sample_tokens
from tflv.layers import RNNDecoder
from tflv.layers.cnn_decoder import CNNDecoder

EOS = 3


def make_step_fn(vocab: int, dim: int = 5, seed: int = 0, sharpness: float = 2.0):
    """A random recurrent model: h' = tanh(W h + E[y]), log p(·) = log_softmax(U h'), no <pad>."""
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.normal(size=(dim, dim)), tf.float32)
    e = tf.constant(rng.normal(size=(vocab, dim)), tf.float32)
    u = tf.constant(sharpness * rng.normal(size=(dim, vocab)), tf.float32)
    no_pad = tf.constant([-1e9] + [0.0] * (vocab - 1))

    def step_fn(tokens, state):
        h = tf.tanh(state["h"] @ w + tf.gather(e, tokens))
        return tf.nn.log_softmax(h @ u + no_pad), {"h": h}

    return step_fn


def sequence_log_prob(step_fn, h0, sequence) -> float:
    state, token, total = {"h": h0[None]}, tf.constant([2]), 0.0
    for y in sequence:
        log_probs, state = step_fn(token, state)
        total += float(log_probs[0, y])
        token = tf.constant([y])
    return total


def brute_force_best(step_fn, h0, vocab, max_length, alpha):
    """Every hypothesis: words from {1..V-1} \\ {eos}, ended by eos or cut at max_length."""
    words = [v for v in range(1, vocab) if v != EOS]
    hypotheses = []
    for n in range(1, max_length + 1):
        for prefix in itertools.product(words, repeat=n - 1):
            hypotheses.append(prefix + (EOS,))
    hypotheses += list(itertools.product(words, repeat=max_length))
    scored = [(sequence_log_prob(step_fn, h0, y), y) for y in hypotheses]
    return max(scored, key=lambda s: s[0] / float(length_penalty(len(s[1]), alpha)))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_finds_the_enumerated_best(alpha):
    vocab, max_length, batch = 5, 3, 3
    step_fn = make_step_fn(vocab, seed=1, sharpness=1.0)
    h0 = tf.random.stateless_normal([batch, 5], seed=[4, 2])
    ids, log_prob = beam_search(step_fn, {"h": h0}, tf.fill([batch], 2), max_length, EOS,
                                beam_size=64, alpha=alpha)
    for b in range(batch):
        best_score, best = brute_force_best(step_fn, h0[b], vocab, max_length, alpha)
        np.testing.assert_array_equal(ids[b, :len(best)].numpy(), best)
        assert np.all(ids[b, len(best):].numpy() == 0)
        np.testing.assert_allclose(log_prob[b], best_score, rtol=1e-5)


def test_length_normalisation_changes_the_winner_toward_longer_outputs():
    # For exact search (beam wider than the 40 hypotheses): if y0 maximises log p and y* the
    # normalised score, |y*| >= |y0|, since log p < 0 and lp grows with length.
    vocab, max_length = 5, 3
    lengths = {0.0: [], 2.0: []}
    for seed in range(6):
        step_fn = make_step_fn(vocab, seed=seed, sharpness=1.0)
        h0 = tf.random.stateless_normal([4, 5], seed=[seed, 7])
        for alpha in lengths:
            ids, _ = beam_search(step_fn, {"h": h0}, tf.fill([4], 2), max_length, EOS,
                                 beam_size=64, alpha=alpha)
            lengths[alpha].append(np.count_nonzero(ids.numpy(), axis=1))
    longer = np.concatenate(lengths[2.0]) >= np.concatenate(lengths[0.0])
    assert longer.all()


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_one_is_greedy(alpha):
    vocab, batch = 12, 6
    step_fn = make_step_fn(vocab, dim=8, seed=3)
    h0 = tf.random.stateless_normal([batch, 8], seed=[1, 2])
    g_ids, g_lp = greedy(step_fn, {"h": h0}, tf.fill([batch], 2), 10, EOS)
    b_ids, b_lp = tf.function(lambda h: beam_search(step_fn, {"h": h}, tf.fill([batch], 2), 10,
                                                    EOS, beam_size=1, alpha=alpha))(h0)
    np.testing.assert_array_equal(g_ids.numpy(), b_ids.numpy())
    np.testing.assert_allclose(g_lp.numpy(), b_lp.numpy(), rtol=1e-6)
    # greedy's log-probability is that of the sequence it returns
    for b in range(batch):
        seq = [y for y in g_ids[b].numpy() if y != 0]
        np.testing.assert_allclose(g_lp[b], sequence_log_prob(step_fn, h0[b], seq), rtol=1e-5)


def test_bad_arguments_are_named():
    step_fn = make_step_fn(5)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(step_fn, {"h": tf.zeros([1, 5])}, tf.constant([2]), 3, EOS, beam_size=0)
    with pytest.raises(ValueError, match="max_length"):
        greedy(step_fn, {"h": tf.zeros([1, 5])}, tf.constant([2]), 0, EOS)


def test_sample_tokens_draws_the_tempered_categorical_and_its_zero_limit():
    logits = tf.random.stateless_normal([64, 7], seed=[3, 1])
    seed = tf.constant([5, 9])
    for temperature in (0.5, 1.0, 2.0):  # τ > 0: exactly the categorical of logits / τ
        expected = tf.random.stateless_categorical(logits / temperature, 1, seed=seed)[:, 0]
        np.testing.assert_array_equal(sample_tokens(logits, temperature, seed).numpy(),
                                      expected.numpy())
    greedy_ids = np.argmax(logits.numpy(), axis=-1)
    np.testing.assert_array_equal(sample_tokens(logits, 0.0, seed).numpy(), greedy_ids)
    np.testing.assert_array_equal(sample_tokens(logits, tf.constant(0.0), seed).numpy(), greedy_ids)
    # the limit τ → 0 of the draws is the argmax (gaps between the top two logits here >> τ)
    gaps = np.diff(np.sort(logits.numpy(), axis=-1)[:, -2:], axis=-1)[:, 0]
    clear = gaps > 0.05
    cold = sample_tokens(logits, 1e-3, seed).numpy()
    np.testing.assert_array_equal(cold[clear], greedy_ids[clear])
    with pytest.raises(ValueError, match="temperature"):
        sample_tokens(logits, -1.0, seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature"):
        sample_tokens(logits, tf.constant(-1.0), seed)


def _rnn_step_fn(decoder, z):
    def step_fn(tokens, states):
        logits, states = decoder(tokens[:, None], z=z, initial_state=states, return_state=True)
        return tf.nn.log_softmax(logits[:, 0]), states
    return step_fn


def test_zero_temperature_rnn_sampling_is_greedy_decoding():
    vocab, n, length = 11, 5, 7
    decoder = RNNDecoder(vocab, embed_dim=6, hidden_dim=8, num_layers=2)
    z = tf.random.stateless_normal([n, 3], seed=[2, 2])
    start = tf.fill([n], 2)
    sampled = decoder.sample(start, length, z=z, temperature=0.0, seed=[4, 4])
    zeros = tf.zeros([n, 8])
    states = [[zeros, zeros], [zeros, zeros]]
    greedy_ids, _ = greedy(_rnn_step_fn(decoder, z), states, start, length, eos_id=-1)
    np.testing.assert_array_equal(sampled.numpy(), greedy_ids.numpy())
    # a serving signature passes the temperature as a float32 tensor, traced once for all τ
    serve = tf.function(lambda t: decoder.sample(start, length, z=z, temperature=t, seed=[4, 4]),
                        input_signature=[tf.TensorSpec([], tf.float32)])
    np.testing.assert_array_equal(serve(tf.constant(0.0)).numpy(), greedy_ids.numpy())
    np.testing.assert_array_equal(
        serve(tf.constant(1.0)).numpy(),
        decoder.sample(start, length, z=z, temperature=1.0, seed=[4, 4]).numpy())


def test_zero_temperature_cnn_sampling_takes_the_argmax_of_its_own_prefix():
    vocab, n, length = 9, 4, 6
    decoder = CNNDecoder(vocab, embed_dim=6, hidden_dim=8, kernel_size=3, dilations=[1, 2])
    z = tf.random.stateless_normal([n, 3], seed=[7, 1])
    start = tf.fill([n], 2)
    sampled = decoder.sample(start, length, z=z, temperature=0.0, seed=[1, 1]).numpy()
    assert ((sampled >= 0) & (sampled < vocab)).all()
    # greedy: x_t = argmax p(· | x_<t, z), scored by teacher forcing on the decoded prefix
    inputs = np.concatenate([np.full([n, 1], 2), sampled[:, :-1]], axis=1).astype("int32")
    np.testing.assert_array_equal(np.argmax(decoder(inputs, z=z).numpy(), axis=-1), sampled)
