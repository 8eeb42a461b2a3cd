"""Tests of tflv.distributions.BlockedHMM: brute-force enumeration in float64 on tiny sizes, the
dense tflv.distributions.HMM (emission -inf outside the word's block) on small ones, float32
stability on a long sequence, and the errors for words outside every block."""
import itertools

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

from tflv.distributions import HMM, BlockedHMM, WordBlocks


def random_blocked(rng, k, m, v, dtype=np.float64):
    """Normalised parameters and the word->block assignment (round robin of a random order)."""
    blocks = WordBlocks(rng.permutation(v) % m, m)
    s, w = k // m, blocks.block_words.shape[1]
    initial = scipy.special.log_softmax(rng.normal(size=k))
    transition = scipy.special.log_softmax(2 * rng.normal(size=(k, k)), -1)
    emission = np.where(blocks.block_words[:, None, :] >= 0, rng.normal(size=(m, s, w)), -np.inf)
    emission = scipy.special.log_softmax(emission, -1)
    return blocks, initial.astype(dtype), transition.astype(dtype), emission.astype(dtype)


def dense_emission(blocks, emission, x):
    """[B, T, K]: log p(x_t | z_t = k), -inf outside x_t's block."""
    m, s, _ = emission.shape
    out = np.full(x.shape + (m * s,), -np.inf)
    for index in np.ndindex(x.shape):
        b, slot = blocks.block_of[x[index]], blocks.slot_of[x[index]]
        out[index][b * s:(b + 1) * s] = emission[b, :, slot]
    return out


def enumerate_row(initial, transition, emit):
    """All K^T paths of one unpadded row (emit [T, K] log-potentials, float64)."""
    length, k = emit.shape
    paths = list(itertools.product(range(k), repeat=length))
    scores = np.array([initial[z[0]] + sum(transition[z[t - 1], z[t]] for t in range(1, length))
                       + sum(emit[t, z[t]] for t in range(length)) for z in paths])
    log_z = scipy.special.logsumexp(scores)
    probs = np.exp(scores - log_z)
    unary, pairwise = np.zeros((length, k)), np.zeros((max(length - 1, 0), k, k))
    for z, p in zip(paths, probs):
        unary[np.arange(length), z] += p
        for t in range(1, length):
            pairwise[t - 1, z[t - 1], z[t]] += p
    return log_z, unary, pairwise, np.array(paths[int(np.argmax(scores))])


def scatter_pairwise(pairwise, states, k):
    """Block-local pairwise [T-1, S, S] at states [T, S] -> dense [T-1, K, K]."""
    out = np.zeros((len(pairwise), k, k))
    for t in range(len(pairwise)):
        out[t][np.ix_(states[t], states[t + 1])] = pairwise[t]
    return out


def test_matches_enumeration_float64_padded():
    rng = np.random.default_rng(1)
    k, m, v, t = 6, 3, 7, 4
    blocks, initial, transition, emission = random_blocked(rng, k, m, v)
    lengths = [4, 2, 1, 0]
    x = rng.integers(0, v, size=(len(lengths), t))
    mask = np.arange(t)[None] < np.array(lengths)[:, None]
    hmm = BlockedHMM(initial, transition, m)
    scores, block_ids = blocks.token_scores(emission, x, mask)
    post = hmm.posterior(scores, block_ids, mask)
    unary = hmm.dense_unary(post).numpy()
    path = hmm.viterbi(scores, block_ids, mask).numpy()
    dense = dense_emission(blocks, emission, x)
    for row, length in enumerate(lengths):
        if length == 0:
            assert post.log_prob[row].numpy() == 0.0
            assert np.all(unary[row] == 0) and np.all(path[row] == 0)
            continue
        log_z, ref_unary, ref_pairwise, ref_path = enumerate_row(initial, transition,
                                                                 dense[row, :length])
        np.testing.assert_allclose(post.log_prob[row], log_z, rtol=1e-12)
        np.testing.assert_allclose(unary[row, :length], ref_unary, atol=1e-12)
        assert np.all(unary[row, length:] == 0)
        pairwise = scatter_pairwise(post.pairwise[row, :length - 1].numpy(),
                                    post.states[row].numpy(), k)
        np.testing.assert_allclose(pairwise, ref_pairwise, atol=1e-12)
        assert np.all(post.pairwise[row, max(length - 1, 0):].numpy() == 0)
        np.testing.assert_array_equal(path[row, :length], ref_path)
        assert np.all(path[row, length:] == 0)


def test_probabilities_of_all_sequences_sum_to_one():
    """Σ_x p(x) = 1 over all V^T sequences: the blocked chain is a normalised generative model."""
    rng = np.random.default_rng(2)
    k, m, v, t = 4, 2, 5, 3
    blocks, initial, transition, emission = random_blocked(rng, k, m, v)
    x = np.array(list(itertools.product(range(v), repeat=t)))
    scores, block_ids = blocks.token_scores(emission, x)
    log_p = BlockedHMM(initial, transition, m).log_prob(scores, block_ids)
    np.testing.assert_allclose(np.exp(scipy.special.logsumexp(log_p)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_dense_hmm(mode, dtype):
    rng = np.random.default_rng(3)
    k, m, v, t = 16, 4, 30, 12
    blocks, initial, transition, emission = random_blocked(rng, k, m, v, dtype)
    lengths = [12, 7, 1]
    x = rng.integers(0, v, size=(len(lengths), t))
    mask = np.arange(t)[None] < np.array(lengths)[:, None]
    hmm = BlockedHMM(initial, transition, m)

    def run(x, mask):
        scores, block_ids = blocks.token_scores(emission, x, mask)
        post = hmm.posterior(scores, block_ids, mask)
        return (post.log_prob, hmm.dense_unary(post), hmm.viterbi(scores, block_ids, mask))

    if mode == "graph":
        run = tf.function(run, input_signature=[tf.TensorSpec([None, None], tf.int64),
                                                tf.TensorSpec([None, None], tf.bool)])
    log_z, unary, path = run(x, mask)
    dense = HMM.from_log_potentials(initial, transition,
                                    dense_emission(blocks, emission, x).astype(dtype),
                                    semiring="log")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(log_z, dense.log_prob(mask=mask), rtol=tol)
    np.testing.assert_allclose(unary, dense.posterior(mask=mask).unary, atol=tol)
    np.testing.assert_array_equal(path, dense.viterbi(mask=mask))


def test_float32_stable_on_long_sequences():
    rng = np.random.default_rng(4)
    k, m, v, t = 8, 2, 50, 3000
    blocks, initial, transition, emission = random_blocked(rng, k, m, v)
    x = rng.integers(0, v, size=(2, t))
    results = []
    for dtype in (np.float32, np.float64):
        hmm = BlockedHMM(initial.astype(dtype), transition.astype(dtype), m)

        @tf.function
        def log_prob(x):
            return hmm.log_prob(*blocks.token_scores(emission.astype(dtype), x))

        results.append(log_prob(x).numpy())
    assert np.all(np.isfinite(results[0])) and np.all(results[0] < -t)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


def test_by_frequency_is_round_robin_of_ranks():
    counts = np.array([5, 50, 1, 20, 20, 7, 0])
    blocks = WordBlocks.by_frequency(counts, 3)
    # ranks: 1 (50), 3 (20), 4 (20), 5 (7), 0 (5), 2 (1), 6 (0)
    for rank, word in enumerate([1, 3, 4, 5, 0, 2, 6]):
        assert blocks.block_of[word] == rank % 3
    np.testing.assert_array_equal(blocks.num_words, [3, 2, 2])
    for b in range(3):
        words = blocks.block_words[b][blocks.block_words[b] >= 0]
        np.testing.assert_array_equal(blocks.block_of[words], b)
        np.testing.assert_array_equal(blocks.slot_of[words], np.arange(len(words)))


def test_word_outside_every_block_is_a_clear_error():
    blocks = WordBlocks(np.arange(6) % 2, 2)
    emission = np.zeros((2, 3, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside every block"):
        blocks.token_scores(emission, [[0, 1, 6]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside every block"):
        blocks.token_scores(emission, [[-1, 1]])
    # A padded position may hold anything.
    scores, _ = blocks.token_scores(emission, [[0, 99]], [[True, False]])
    assert scores.shape == (1, 2, 3)
    with pytest.raises(ValueError, match="word id 2 is assigned to block 5"):
        WordBlocks([0, 1, 5], 2)
    with pytest.raises(ValueError, match="block 2 has no words"):
        WordBlocks([0, 1, 0], 3)
    with pytest.raises(ValueError, match="positive divisor of K=6"):
        BlockedHMM(np.zeros(6), np.zeros((6, 6)), 4)
    with pytest.raises(ValueError, match=r"emission_scores must have shape \[B, T, S=3\]"):
        BlockedHMM(np.zeros(6), np.zeros((6, 6)), 2).log_prob(np.zeros((1, 2, 2)), [[0, 1]])


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_sampler_draws_from_the_model(temperature):
    """Chi-square of 4000 sampled sequences of length 2 against exp(log_prob) (temperature 1),
    or against the chain whose log-probs are divided by the temperature and renormalised."""
    rng = np.random.default_rng(5)
    k, m, v, t = 4, 2, 5, 2
    blocks, initial, transition, emission = random_blocked(rng, k, m, v)
    tempered = [scipy.special.log_softmax(p / temperature, -1)
                for p in (initial, transition, emission)]
    samples = BlockedHMM(initial, transition, m).sample(emission, blocks, 4000, t, seed=(3, 4),
                                                        temperature=temperature).numpy()
    x = np.array(list(itertools.product(range(v), repeat=t)))
    scores, block_ids = blocks.token_scores(tempered[2], x)
    probs = np.exp(BlockedHMM(tempered[0], tempered[1], m).log_prob(scores, block_ids).numpy())
    observed = np.array([np.sum(np.all(samples == row, -1)) for row in x])
    assert observed.sum() == len(samples)
    assert scipy.stats.chisquare(observed, probs * len(samples)).pvalue > 1e-3
