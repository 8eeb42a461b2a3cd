"""Greedy and beam search against exhaustive enumeration of every hypothesis on a tiny model."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from tflv.decoding import beam_search, greedy, length_penalty

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
