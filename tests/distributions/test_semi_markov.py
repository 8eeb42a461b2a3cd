"""Tests of tflv.distributions.SemiMarkovChain against enumeration and the HMM.

The oracle enumerates, in numpy float64, every segmentation of each unpadded row (every
composition of n into parts of at most L, times K^{#segments} state sequences) and scores it
from the definition: log Z, segment and state marginals, the Viterbi segmentation and the
probabilities of the sampling test all come from it. With L = 1 the chain must be
`HMM.from_log_potentials`.
"""
import itertools

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

from tflv.distributions import HMM, Segmentation, SemiMarkovChain, segments_keeping_spans


def compositions(n, max_len):
    """All tuples of segment lengths in 1..max_len summing to n."""
    if n == 0:
        yield ()
        return
    for first in range(1, min(max_len, n) + 1):
        for rest in compositions(n - first, max_len):
            yield (first,) + rest


def enumerate_segmentations(initial, transition, segment, length, n):
    """Brute force for one row of length n: initial [K], transition [K, K], segment [T, L, K],
    length [K, L] (float64)."""
    _, max_len, k = segment.shape
    items, scores = [], []
    for lengths in compositions(n, max_len):
        ends = np.cumsum(lengths) - 1
        for states in itertools.product(range(k), repeat=len(lengths)):
            score = initial[states[0]] if lengths else 0.0
            score += sum(transition[a, b] for a, b in zip(states[:-1], states[1:]))
            score += sum(length[s, l - 1] + segment[e, l - 1, s]
                         for s, l, e in zip(states, lengths, ends))
            items.append((lengths, states))
            scores.append(score)
    scores = np.array(scores)
    log_z = scipy.special.logsumexp(scores)
    probs = np.exp(scores - log_z)
    seg_marg = np.zeros(segment.shape)
    state_marg = np.zeros((segment.shape[0], k))
    as_arrays = []
    for (lengths, states), p in zip(items, probs):
        ends = np.cumsum(lengths) - 1
        per_state = np.zeros(segment.shape[0], int)
        per_end = np.zeros(segment.shape[0], int)
        for s, l, e in zip(states, lengths, ends):
            seg_marg[e, l - 1, s] += p
            state_marg[e - l + 1:e + 1, s] += p
            per_state[e - l + 1:e + 1] = s
            per_end[e] = l
        as_arrays.append((per_state, per_end))
    best = as_arrays[int(np.argmax(scores))]
    return dict(log_z=log_z, segments=seg_marg, states=state_marg, viterbi=best,
                items=as_arrays, probs=probs)


def random_chain(rng, b, t, max_len, k):
    return (rng.normal(size=(b, k)), rng.normal(size=(b, k, k)),
            rng.normal(size=(b, t, max_len, k)), rng.normal(size=(b, k, max_len)))


@pytest.mark.parametrize("semiring", ["scaled", "log"])
def test_log_partition_and_marginals_match_enumeration_with_padding(semiring):
    rng = np.random.default_rng(0)
    b, t, max_len, k = 3, 5, 3, 2
    params = random_chain(rng, b, t, max_len, k)
    lengths = np.array([5, 3, 0])
    mask = np.arange(t)[None] < lengths[:, None]
    chain = SemiMarkovChain(*params, semiring=semiring)
    post = chain.posterior(mask)
    for row, n in enumerate(lengths):
        want = enumerate_segmentations(*(p[row] for p in params), n)
        np.testing.assert_allclose(post.log_partition[row], want["log_z"], rtol=1e-10)
        np.testing.assert_allclose(post.segments[row], want["segments"], atol=1e-10)
        np.testing.assert_allclose(post.states[row], want["states"], atol=1e-10)
    np.testing.assert_allclose(chain.log_partition(mask), post.log_partition, rtol=1e-12)


def test_gradients_w_r_t_every_potential_are_expected_counts():
    """∂ log Z / ∂ θ_0, θ, λ are the expected initial, transition and length counts."""
    rng = np.random.default_rng(1)
    params = [tf.constant(p) for p in random_chain(rng, 1, 4, 2, 3)]
    with tf.GradientTape() as tape:
        tape.watch(params)
        log_z = SemiMarkovChain(*params).log_partition()
    g_init, g_trans, _, g_len = tape.gradient(log_z, params)
    want = enumerate_segmentations(*(p.numpy()[0] for p in params), 4)
    init, trans, length = np.zeros(3), np.zeros((3, 3)), np.zeros((3, 2))
    for (states, ends), p in zip(want["items"], want["probs"]):
        seg_states = [states[e] for e in np.flatnonzero(ends)]
        init[seg_states[0]] += p
        for a, c in zip(seg_states[:-1], seg_states[1:]):
            trans[a, c] += p
        for e in np.flatnonzero(ends):
            length[states[e], ends[e] - 1] += p
    np.testing.assert_allclose(g_init[0], init, atol=1e-10)
    np.testing.assert_allclose(g_trans[0], trans, atol=1e-10)
    np.testing.assert_allclose(g_len[0], length, atol=1e-10)


def test_viterbi_is_the_enumerated_argmax_and_log_prob_normalises():
    rng = np.random.default_rng(2)
    b, t, max_len, k = 4, 6, 3, 2
    params = random_chain(rng, b, t, max_len, k)
    lengths = np.array([6, 4, 1, 5])
    mask = np.arange(t)[None] < lengths[:, None]
    chain = SemiMarkovChain(*params)
    best = chain.viterbi(mask)
    log_p = chain.log_prob(best, mask).numpy()
    for row, n in enumerate(lengths):
        want = enumerate_segmentations(*(p[row] for p in params), n)
        np.testing.assert_array_equal(best.states[row], want["viterbi"][0])
        np.testing.assert_array_equal(best.ends[row], want["viterbi"][1])
        np.testing.assert_allclose(log_p[row], np.log(want["probs"].max()), rtol=1e-10)


def test_length_one_is_the_hmm():
    rng = np.random.default_rng(3)
    b, t, k = 3, 7, 4
    init, trans, segment = (rng.normal(size=s) for s in ((b, k), (b, k, k), (b, t, 1, k)))
    length = rng.normal(size=(b, k, 1))
    mask = np.arange(t)[None] < np.array([7, 4, 2])[:, None]
    chain = SemiMarkovChain(init, trans, segment, length)
    hmm = HMM.from_log_potentials(init, trans, segment[:, :, 0] + length[:, None, :, 0])
    hmm_post = hmm.posterior(mask=mask)
    post = chain.posterior(mask)
    np.testing.assert_allclose(post.log_partition, hmm_post.log_prob, rtol=1e-10)
    np.testing.assert_allclose(post.states, hmm_post.unary, atol=1e-10)
    np.testing.assert_array_equal(chain.viterbi(mask).states, hmm.viterbi(mask=mask))


def test_samples_follow_the_enumerated_distribution():
    """Chi-square test of 3,000 FFBS draws against the exact segmentation probabilities."""
    rng = np.random.default_rng(4)
    params = [p.astype(np.float32) for p in random_chain(rng, 1, 4, 2, 2)]
    draws = SemiMarkovChain(*params).sample(3000, seed=(7, 11))
    want = enumerate_segmentations(*(p[0].astype(np.float64) for p in params), 4)
    index = {(tuple(s), tuple(e)): i for i, (s, e) in enumerate(want["items"])}
    counts = np.zeros(len(index))
    for states, ends in zip(draws.states[:, 0].numpy(), draws.ends[:, 0].numpy()):
        counts[index[(tuple(states), tuple(ends))]] += 1  # KeyError: an impossible draw
    _, p_value = scipy.stats.chisquare(counts, want["probs"] * counts.sum())
    assert p_value > 1e-3, (counts, want["probs"] * counts.sum())


def test_forbidden_moves_give_finite_gradients_and_zero_marginals():
    """−inf transitions and lengths: no self-loops, no length-2 segments in state 0, and state
    3 unreachable (every ⊕ over its scores is a sum of zeros)."""
    rng = np.random.default_rng(5)
    init, trans, segment, length = random_chain(rng, 2, 5, 3, 4)
    trans[:, np.arange(4), np.arange(4)] = -np.inf
    length[:, 0, 1] = -np.inf
    init[:, 3] = trans[:, :, 3] = -np.inf
    params = [tf.constant(p) for p in (init, trans, segment, length)]
    mask = np.array([[1] * 5, [1, 1, 0, 0, 0]], bool)
    for semiring in ("scaled", "log"):
        with tf.GradientTape() as tape:
            tape.watch(params)
            post = SemiMarkovChain(*params, semiring=semiring).posterior(mask)
            total = tf.reduce_sum(post.log_partition)
        grads = tape.gradient(total, params)
        assert all(np.all(np.isfinite(g)) for g in grads)
        for row, n in enumerate((5, 2)):
            want = enumerate_segmentations(init[row], trans[row], segment[row], length[row], n)
            np.testing.assert_allclose(post.log_partition[row], want["log_z"], rtol=1e-10)
            np.testing.assert_allclose(post.segments[row], want["segments"], atol=1e-10)
        assert np.all(post.segments.numpy()[:, :, 1, 0] == 0)
        assert np.all(post.states.numpy()[:, :, 3] == 0)


def test_shared_parameters_broadcast_and_xla_agrees():
    rng = np.random.default_rng(6)
    b, t, max_len, k = 3, 6, 2, 3
    init, trans = rng.normal(size=k), rng.normal(size=(k, k))
    segment = rng.normal(size=(b, t, max_len, k)).astype(np.float32)
    chain = lambda s: SemiMarkovChain(init.astype(np.float32), trans.astype(np.float32), s)
    eager = chain(segment).log_partition()
    compiled = tf.function(lambda s: chain(s).log_partition(), jit_compile=True)(segment)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    for row in range(b):
        want = enumerate_segmentations(init, trans, segment[row].astype(np.float64),
                                       np.zeros((k, max_len)), t)
        np.testing.assert_allclose(eager[row], want["log_z"], rtol=1e-5)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="number of states K.*transition_log_potentials"):
        SemiMarkovChain(np.zeros(3), np.zeros((4, 4)), np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="maximum segment length L.*length_log_potentials has 3"):
        SemiMarkovChain(np.zeros(3), np.zeros((3, 3)), np.zeros((5, 2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="mask has 4 positions"):
        SemiMarkovChain(np.zeros(3), np.zeros((3, 3)), np.zeros((5, 2, 3))).log_partition(
            np.ones(4, bool))
    with pytest.raises(tf.errors.InvalidArgumentError, match="prefix"):
        SemiMarkovChain(np.zeros(3), np.zeros((3, 3)), np.zeros((3, 2, 3))).log_partition(
            np.array([True, False, True]))


def test_score_of_a_hand_built_segmentation():
    """[0 0 | 1] in states (1, 0):
    θ_0[1] + θ[1, 0] + λ[1, 2] + φ_1[2, 1] + λ[0, 1] + φ_2[1, 0] (lengths 1-based here)."""
    rng = np.random.default_rng(8)
    init, trans, segment, length = (p[0] for p in random_chain(rng, 1, 3, 2, 2))
    z = Segmentation(np.array([1, 1, 0]), np.array([0, 2, 1]))
    want = (init[1] + trans[1, 0] + length[1, 1] + segment[1, 1, 1] + length[0, 0]
            + segment[2, 0, 0])
    np.testing.assert_allclose(SemiMarkovChain(init, trans, segment, length).score(z), want,
                               rtol=1e-12)


def test_one_position_chains():
    """T = 1: only length-1 segments, log Z = logsumexp(θ_0 + λ[:, 1] + φ_0[1])."""
    rng = np.random.default_rng(9)
    init, trans, segment, length = (p[0] for p in random_chain(rng, 1, 1, 3, 4))
    post = SemiMarkovChain(init, trans, segment, length).posterior()
    scores = init + length[:, 0] + segment[0, 0]
    np.testing.assert_allclose(post.log_partition, scipy.special.logsumexp(scores), rtol=1e-12)
    np.testing.assert_allclose(post.states[0], scipy.special.softmax(scores), atol=1e-12)
    assert np.all(post.segments.numpy()[:, 1:] == 0)


def keeps_spans(lengths, spans):
    """Whether a segmentation (segment lengths) has every span (start, length) as a segment."""
    starts = np.cumsum((0,) + tuple(lengths))[:-1].tolist()
    return all((a, m) in set(zip(starts, lengths)) for a, m in spans)


@pytest.mark.parametrize("semiring", ["scaled", "log"])
def test_span_constraints_keep_exactly_the_segmentations_with_whole_spans(semiring):
    """−inf on the segments `segments_keeping_spans` rejects leaves log Z = the log-sum over
    the enumerated segmentations in which every span is a segment; a span longer than L is
    not a constraint; the constrained Viterbi keeps the spans."""
    rng = np.random.default_rng(5)
    b, t, max_len, k = 3, 7, 3, 2
    initial, transition, segment, length = random_chain(rng, b, t, max_len, k)
    span_rows = [[(1, 2), (4, 3)], [(0, 1), (2, 1), (3, 2)], [(2, 4)]]  # (start, length)
    n = np.array([7, 6, 5])
    span_lengths = np.zeros((b, t), np.int32)
    for row, spans in enumerate(span_rows):
        for a, m in spans:
            span_lengths[row, a] = m
    keep = segments_keeping_spans(span_lengths, max_len).numpy()
    constrained = np.where(keep[..., None], segment, -np.inf)
    mask = np.arange(t)[None] < n[:, None]
    chain = SemiMarkovChain(initial, transition, constrained, length, semiring=semiring)
    log_z = chain.log_partition(mask).numpy()
    best = chain.viterbi(mask)
    for row in range(b):
        honored = [(a, m) for a, m in span_rows[row] if m <= max_len]
        scores, kept = [], []
        for lengths in compositions(n[row], max_len):
            if not keeps_spans(lengths, honored):
                continue
            kept.append(lengths)
            ends = np.cumsum(lengths) - 1
            for states in itertools.product(range(k), repeat=len(lengths)):
                scores.append(initial[row, states[0]]
                              + sum(transition[row, x, y] for x, y in zip(states, states[1:]))
                              + sum(length[row, s, l - 1] + segment[row, e, l - 1, s]
                                    for s, l, e in zip(states, lengths, ends)))
        every = len(list(compositions(n[row], max_len)))
        assert 0 < len(kept) < every if honored else len(kept) == every
        np.testing.assert_allclose(log_z[row], scipy.special.logsumexp(scores), rtol=1e-10)
        found = tuple(int(l) for l in best.ends[row].numpy() if l > 0)
        assert found in kept
    # the 4-token span of row 2 is no constraint with L = 3
    assert np.array_equal(keep[2], np.ones((t, max_len), bool))
