"""Tests of BlockedNeuralHMM: normalisation of every distribution (and Σ_x p(x) = 1 by
enumeration of all sequences), the renormalisation over the states kept by state dropout,
state dropout's law (exactly n a block, each state kept with probability n / S, all n-subsets
equally likely), and blocked == dense HMM for the neural parameters."""
import itertools
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

from tflv.distributions import HMM, WordBlocks
from tflv.layers.blocked_hmm_parameters import BlockedNeuralHMM, kept_count


def make_layer(k=8, m=2, v=7, d=6, seed=0):
    tf.keras.utils.set_random_seed(seed)
    blocks = WordBlocks.by_frequency(np.arange(v)[::-1], m)
    layer = BlockedNeuralHMM(k, blocks.block_of.tolist(), m, embed_dim=d)
    layer.build()
    # Non-zero word biases so that the test sees them.
    layer.word_bias.assign(np.random.default_rng(seed).normal(size=v))
    return layer


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_distributions_are_normalised(rate):
    layer = make_layer()
    kept = layer.keep_states(rate, seed=(1, 2))
    params = layer(kept)
    n = kept_count(layer.block_size, rate)
    assert params.transition.shape == (layer.num_blocks * n,) * 2
    np.testing.assert_allclose(tf.reduce_sum(tf.exp(params.initial)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(tf.reduce_sum(tf.exp(params.transition), -1), 1.0, rtol=1e-5)
    emission = tf.exp(params.emission).numpy()  # [M, n, W]
    np.testing.assert_allclose(emission.sum(-1), 1.0, rtol=1e-5)
    pad = layer.blocks.block_words < 0
    assert np.all(emission[np.broadcast_to(pad[:, None, :], emission.shape)] == 0)


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_all_sequences_sum_to_one(rate):
    layer = make_layer()
    t, v = 3, layer.blocks.vocab_size
    x = np.array(list(itertools.product(range(v), repeat=t)))
    log_p = layer.log_prob(x, kept=layer.keep_states(rate, seed=(3, 4)))
    np.testing.assert_allclose(np.exp(scipy.special.logsumexp(log_p.numpy().astype(np.float64))),
                               1.0, rtol=1e-4)


def test_state_dropout_renormalises_over_kept_states():
    """The kept-state HMM is the full HMM's logits restricted to the kept states, softmaxed."""
    layer = make_layer(k=12, m=3)
    kept = layer.keep_states(0.5, seed=(5, 6))
    ids = kept.numpy().reshape(-1)
    params = layer(kept)
    states = layer.state_embeddings.numpy()
    nxt = layer.next_state_embeddings.numpy()
    logits = layer.transition_mlp(states).numpy() @ nxt.T
    np.testing.assert_allclose(params.transition,
                               scipy.special.log_softmax(logits[np.ix_(ids, ids)], -1),
                               atol=1e-5)
    np.testing.assert_allclose(
        params.initial, scipy.special.log_softmax(nxt[ids] @ layer.start_query.numpy()),
        atol=1e-5)
    full = layer(None).emission.numpy().reshape(layer.num_states, -1)
    np.testing.assert_allclose(params.emission.numpy().reshape(len(ids), -1), full[ids])


def test_state_dropout_law():
    layer = make_layer(k=8, m=2)  # S = 4, rate 0.5 -> n = 2
    s, n, draws = layer.block_size, 2, 600
    counts = np.zeros(layer.num_states)
    subsets = {}
    for i in range(draws):
        kept = layer.keep_states(0.5, seed=(7, i)).numpy()
        assert kept.shape == (layer.num_blocks, n)
        for b, row in enumerate(kept):
            assert len(set(row)) == n and np.all(row // s == b) and np.all(np.diff(row) > 0)
        counts[kept.reshape(-1)] += 1
        key = tuple(kept[0] % s)
        subsets[key] = subsets.get(key, 0) + 1
    # Each state is kept with probability n / S: binomial, 5 standard deviations.
    p = n / s
    assert np.all(np.abs(counts / draws - p) < 5 * math.sqrt(p * (1 - p) / draws))
    # All C(S, n) subsets equally likely (block 0): chi-square test.
    assert len(subsets) == math.comb(s, n)
    assert scipy.stats.chisquare(list(subsets.values())).pvalue > 1e-3
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        layer.keep_states(1.0, seed=(0, 0))


def test_blocked_equals_dense_hmm():
    layer = make_layer(k=8, m=2, v=9)
    rng = np.random.default_rng(8)
    x = rng.integers(0, 9, size=(3, 6))
    mask = np.arange(6)[None] < np.array([[6], [4], [2]])
    params = layer(None)
    dense_emission = np.full((layer.num_states, 9), -np.inf, np.float32)
    s = layer.block_size
    for w in range(9):
        b, slot = layer.blocks.block_of[w], layer.blocks.slot_of[w]
        dense_emission[b * s:(b + 1) * s, w] = params.emission[b, :, slot]
    dense = HMM.from_log_potentials(params.initial, params.transition,
                                    np.transpose(dense_emission[:, x], [1, 2, 0]), semiring="log")
    np.testing.assert_allclose(layer.log_prob(x, mask), dense.log_prob(mask=mask), rtol=1e-5)


def test_config_round_trip_and_bad_sizes():
    layer = make_layer()
    clone = BlockedNeuralHMM.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="positive divisor of num_states=8"):
        BlockedNeuralHMM(8, [0, 1, 2], 3)
    with pytest.raises(ValueError, match="word id 1 is assigned to block 2"):
        BlockedNeuralHMM(8, [0, 2], 2)
