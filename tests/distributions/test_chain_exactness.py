"""Exactness of the chain core on hard inputs, against references this file does not share
with the code: brute-force enumeration over all state paths in float64 (torch-struct's
oracle and its Σ-score identity), a float64 log-space forward pass, TFP's
`HiddenMarkovModel` (its own test cases, ported) and finite differences.

Hard inputs: −inf potentials (forbidden moves, unreachable states, a token no state emits),
logits far beyond the scaled semiring's range, T = 0 and T = 1 with T unknown when the graph is
built, and the factorial HMM's mean field with logits up to ±50 in float32.
"""
import itertools

import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.distributions import HMM, FactorialHMM
from tflv.distributions._forward import forward, scaled_is_exact

tfd = tfp.distributions
INF = np.inf
SUM_SEMIRINGS = ("auto", "scaled", "log")
# Eager for every semiring; graph and XLA for the default and the log one ("scaled" is a
# synonym of "auto"; the fallback test covers it in all three modes).
MODES_AND_SEMIRINGS = [("eager", s) for s in SUM_SEMIRINGS] + [
    (m, s) for m in ("graph", "xla") for s in ("auto", "log")]


def oracle(initial, transition, emission):
    """Enumerates every path of one chain (float64). initial [K], transition [K, K] or
    [T-1, K, K], emission [T, K] log-potentials, −inf allowed. Returns log Z, the unary and
    pairwise marginals, the entropy and the expected score Σ_z p(z) score(z) over the finite
    potentials."""
    length, k = emission.shape
    steps = transition if transition.ndim == 3 else np.broadcast_to(
        transition, (max(length - 1, 0), k, k))
    paths = list(itertools.product(range(k), repeat=length))
    scores = np.array([initial[z[0]] + sum(steps[t - 1, z[t - 1], z[t]] for t in range(1, length))
                       + sum(emission[t, z[t]] for t in range(length)) if length else 0.0
                       for z in paths])
    log_z = scipy.special.logsumexp(scores)
    probs = np.exp(scores - log_z) if np.isfinite(log_z) else np.zeros_like(scores)
    unary, pairwise = np.zeros((length, k)), np.zeros((max(length - 1, 0), k, k))
    for z, p in zip(paths, probs):
        unary[np.arange(length), list(z)] += p
        for t in range(1, length):
            pairwise[t - 1, z[t - 1], z[t]] += p
    live = probs > 0
    entropy = -np.sum(probs[live] * np.log(probs[live]))
    return dict(log_z=log_z, unary=unary, pairwise=pairwise, entropy=entropy,
                expected_score=np.sum(probs[live] * scores[live]))


def log_space_forward(initial, transition, emission):
    """log Z of one chain by a float64 logsumexp recursion (any T, any range)."""
    alpha = initial + emission[0]
    for t in range(1, len(emission)):
        alpha = scipy.special.logsumexp(alpha[:, None] + transition, axis=0) + emission[t]
    return scipy.special.logsumexp(alpha)


def run_in(mode, fn, args):
    """fn(*args) eagerly, in a tf.function with unknown dimensions, or XLA-compiled."""
    if mode == "eager":
        return fn(*args)
    signature = [tf.TensorSpec([None] * a.shape.rank, a.dtype) for a in args]
    if mode == "graph":
        return tf.function(fn, input_signature=signature)(*args)
    return tf.function(fn, jit_compile=True)(*args)


def forbidden_chain(rng, b, t, k, dtype=np.float64):
    """Per-row potentials with −inf entries: state k-1 can never be entered (its transition
    column is −inf), some transitions and emissions are forbidden, and row 0 has a position
    whose only allowed state is 0."""
    initial = rng.normal(size=(b, k))
    initial[:, 1] = -INF
    transition = rng.normal(size=(b, k, k))
    transition[:, :, k - 1] = -INF
    transition[:, 0, 1] = -INF
    emission = rng.normal(size=(b, t, k))
    emission[:, 1, 0] = -INF
    emission[0, 2, 1:] = -INF
    return [p.astype(dtype) for p in (initial, transition, emission)]


def test_issue_example_gives_the_exact_marginals_in_every_semiring():
    """The issue's smallest case: state 1 can never be left for itself; the log semiring gave
    NaN marginals in the first two rows."""
    for semiring in SUM_SEMIRINGS:
        hmm = HMM([0.0, 0.0], [[0.0, -INF], [0.0, -INF]], np.zeros((2, 2)), semiring=semiring)
        post = hmm.posterior([[0, 1, 1]], pairwise=True)
        np.testing.assert_allclose(post.unary[0], [[0.5, 0.5], [1, 0], [1, 0]], atol=1e-6)
        np.testing.assert_allclose(post.log_prob, [3 * np.log(0.5)], rtol=1e-6)
        np.testing.assert_allclose(post.pairwise[0], [[[0.5, 0], [0.5, 0]], [[1, 0], [0, 0]]],
                                   atol=1e-6)


@pytest.mark.parametrize("mode,semiring", [
    pytest.param(*case, marks=pytest.mark.slow) if case == ("graph", "auto") else case
    for case in MODES_AND_SEMIRINGS])
def test_minus_inf_potentials_match_enumeration(mode, semiring):
    rng = np.random.default_rng(40)
    b, t, k = 2, 4, 3
    potentials = [tf.constant(p) for p in forbidden_chain(rng, b, t, k)]

    def run(initial, transition, emission):
        hmm = HMM.from_log_potentials(initial, transition, emission, semiring=semiring)
        # The entropy's gradient is second order (autodiff through the hand-written backward
        # pass), also under XLA in every semiring.
        with tf.GradientTape() as tape:
            tape.watch([initial, transition, emission])
            entropy = hmm.posterior_entropy()
        target = entropy
        post = hmm.posterior(pairwise=True)
        return (post.log_prob, post.unary, post.pairwise, entropy,
                tape.gradient(target, [initial, transition, emission]))

    log_z, unary, pairwise, entropy, grads = run_in(mode, run, potentials)
    for g in grads:
        assert np.all(np.isfinite(g)), g
    for row in range(b):
        ref = oracle(*(p[row].numpy() for p in potentials))
        np.testing.assert_allclose(log_z[row], ref["log_z"], rtol=1e-12)
        np.testing.assert_allclose(unary[row], ref["unary"], atol=1e-12)
        np.testing.assert_allclose(pairwise[row], ref["pairwise"], atol=1e-12)
        np.testing.assert_allclose(entropy[row], ref["entropy"], atol=1e-12)
        # torch-struct's identity: log Z = Σ marginals · (finite) potentials + H.
        init, trans, emit = (np.where(np.isfinite(p[row]), p[row], 0.0) for p in potentials)
        score = (np.sum(unary[row, 0] * init) + np.sum(pairwise[row] * trans)
                 + np.sum(unary[row] * emit))
        np.testing.assert_allclose(score, ref["expected_score"], rtol=1e-12)
        np.testing.assert_allclose(log_z[row], score + ref["entropy"], rtol=1e-12)


@pytest.mark.parametrize("semiring", ["scaled", "log"])
def test_entropy_and_log_prob_gradients_with_minus_inf_match_finite_differences(semiring):
    """float64 central differences over every finite potential (−inf entries stay −inf);
    the entropy gradient was all NaN in both semirings."""
    rng = np.random.default_rng(41)
    potentials = [tf.constant(p) for p in forbidden_chain(rng, 2, 4, 3)]
    for method in ("log_prob", "posterior_entropy"):
        for i in range(3):
            def fn(p, i=i, method=method):
                args = list(potentials)
                args[i] = p
                return getattr(HMM.from_log_potentials(*args, semiring=semiring), method)()

            theoretical, numerical = tf.test.compute_gradient(fn, [potentials[i]], delta=1e-6)
            assert np.all(np.isfinite(theoretical[0]))
            np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("semiring", SUM_SEMIRINGS)
def test_probability_zero_gives_minus_inf_and_finite_gradients(dtype, semiring):
    """Row 0: token 2 has probability 0 under every state (was NaN in the scaled semiring);
    row 1: the transitions forbid every path; row 2 is an ordinary sequence."""
    initial = np.log(np.array([0.5, 0.5]))
    transition = np.array([[0.0, -INF], [-INF, 0.0]])  # a state never changes
    emission = np.array([[0.0, -INF, -INF], [-INF, 0.0, -INF]])  # state k emits token k only
    x = np.array([[0, 2, 0], [0, 1, 0], [1, 1, 1]], np.int32)
    params = [tf.constant(p.astype(dtype)) for p in (initial, transition, emission)]
    with tf.GradientTape() as tape:
        tape.watch(params)
        hmm = HMM(*params, semiring=semiring)
        log_prob = hmm.log_prob(x)
        total = tf.reduce_sum(tf.where(tf.math.is_finite(log_prob), log_prob, 0.0))
    np.testing.assert_array_equal(log_prob[:2], [-INF, -INF])
    np.testing.assert_allclose(log_prob[2], np.log(0.5), rtol=1e-6)
    for g in tape.gradient(total, params):
        assert np.all(np.isfinite(g))
    post = hmm.posterior(x, pairwise=True)
    np.testing.assert_array_equal(post.unary[:2], 0.0)
    np.testing.assert_array_equal(post.pairwise[:2], 0.0)
    np.testing.assert_allclose(post.unary[2], [[0, 1]] * 3, atol=1e-6)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_scaled_semiring_falls_back_where_it_would_lose_range(mode):
    """Logits of ±50 (2 states) and ±80 (T = 300) break the range rule in float32: the scaled
    pass alone gave −inf and tens of nats of error. Each row is checked against a float64
    log-space reference, in a batch mixing safe and unsafe rows."""
    rng = np.random.default_rng(42)
    b, t, k = 3, 300, 4
    scales = np.array([50.0, 80.0, 1.0])[:, None, None]
    initial = rng.uniform(-1, 1, size=(b, k)) * scales[:, 0]
    transition = rng.uniform(-1, 1, size=(b, k, k)) * scales
    emission = rng.uniform(-1, 1, size=(b, t, k)) * scales
    references = [log_space_forward(initial[r], transition[r], emission[r]) for r in range(b)]
    args = [tf.constant(p, tf.float32) for p in (initial, transition, emission)]
    ok = scaled_is_exact(args[0], [args[1]], tf.transpose(args[2], [1, 0, 2])).numpy()
    np.testing.assert_array_equal(ok, [False, False, True])
    for semiring in SUM_SEMIRINGS:
        log_z = run_in(mode, lambda *a: HMM.from_log_potentials(*a, semiring=semiring)
                       .log_prob(), args)
        np.testing.assert_allclose(log_z, references, rtol=2e-6)
    # The same in float64 (the rule's budget is larger there, and the scaled pass is exact).
    log_z = HMM.from_log_potentials(*[tf.cast(a, tf.float64) for a in args],
                                    semiring="scaled").log_prob()
    np.testing.assert_allclose(log_z, [log_space_forward(*(a[r].numpy().astype(np.float64)
                                                             for a in args)) for r in range(b)],
                               rtol=1e-12)


def test_the_range_rule_keeps_the_scaled_path_for_ordinary_inputs():
    """The fallback must not cost speed where it is not needed: normal-sized logits (and −inf
    emissions) pass the rule; a −inf transition does not."""
    rng = np.random.default_rng(43)
    initial, transition = tf.constant(rng.normal(size=(8, 16))), tf.constant(rng.normal(
        size=(16, 16)))
    emissions = rng.normal(size=(50, 8, 16)) * 3
    emissions[:, :, 3] = -INF
    for dtype in (tf.float32, tf.float64):
        cast = [tf.cast(p, dtype) for p in (initial, transition, tf.constant(emissions))]
        assert np.all(scaled_is_exact(cast[0], [cast[1]], cast[2]))
        forbidden = tf.tensor_scatter_nd_update(cast[1], [[0, 1]], tf.constant([-INF], dtype))
        assert not np.any(scaled_is_exact(cast[0], [forbidden], cast[2]))


def test_per_step_transitions_are_explicit_never_guessed_from_rank():
    """[7, K, K] transitions with emissions [8, K] are a batch of 7 shared matrices (as TFP
    reads them) unless per_step_transitions=True; they were read as 7 steps."""
    rng = np.random.default_rng(44)
    k = 3
    initial, transition, emission = (rng.normal(size=s) for s in ((k,), (7, k, k), (8, k)))
    batch = HMM.from_log_potentials(initial, transition, emission).log_prob()
    assert batch.shape == [7]
    for i in range(7):
        np.testing.assert_allclose(batch[i], oracle(initial, transition[i], emission)["log_z"],
                                   rtol=1e-12)
    steps = HMM.from_log_potentials(initial, transition, emission,
                                    per_step_transitions=True).log_prob()
    assert steps.shape == []
    np.testing.assert_allclose(steps, oracle(initial, transition, emission)["log_z"], rtol=1e-12)
    with pytest.raises(ValueError, match="rank >= 3"):
        HMM.from_log_potentials(initial, transition[0], emission, per_step_transitions=True)


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("length", [0, 1])
def test_zero_and_one_step_sequences(mode, length):
    """T = 0 gives log p = 0 (the empty path) and empty marginals; T = 1 the single-position
    values; also in a tf.function where T is unknown (the scans used to fail to stack an
    empty list)."""
    rng = np.random.default_rng(45)
    k, v = 3, 4
    params = [tf.constant(rng.normal(size=s)) for s in ((k,), (k, k), (k, v))]
    x = tf.constant(rng.integers(0, v, size=(2, length)), tf.int32)

    def run(initial, transition, emission, x):
        hmm = HMM(initial, transition, emission)
        unary, pairwise = hmm.posterior_marginals(x)
        return dict(log_prob=hmm.log_prob(x), unary=unary, pairwise=pairwise,
                    entropy=hmm.posterior_entropy(x), viterbi=hmm.viterbi(x),
                    sample=hmm.posterior_sample(x, n=2, seed=1),
                    counts=hmm.expected_counts(x))

    out = run_in(mode, run, params + [x])
    log_init, log_trans, log_emit = (scipy.special.log_softmax(p.numpy(), -1) for p in params)
    for row in range(2):
        ref = oracle(log_init, log_trans, log_emit[:, x[row].numpy()].T)
        np.testing.assert_allclose(out["log_prob"][row], ref["log_z"], atol=1e-12)
        np.testing.assert_allclose(out["unary"][row], ref["unary"], atol=1e-12)
        np.testing.assert_allclose(out["entropy"][row], ref["entropy"], atol=1e-12)
    assert out["unary"].shape == (2, length, k) and out["pairwise"].shape == (2, 0, k, k)
    assert out["viterbi"].shape == (2, length) and out["sample"].shape == (2, 2, length)
    if length == 0:
        np.testing.assert_array_equal(out["log_prob"], [0.0, 0.0])
        for counts in out["counts"]:
            np.testing.assert_array_equal(counts, 0.0)


@pytest.mark.parametrize("semiring", ["scaled", "log"])
def test_mean_field_is_finite_monotone_and_a_bound_with_large_logits(semiring):
    """Logits uniform in ±50, float32 (and ±30, float64): the update took the log of
    round-off-negative mixtures and the ELBO was NaN. It must stay finite, never decrease
    (beyond float32 round-off) and stay below the exact log p."""
    chains, k, v, t = 2, 3, 8, 7
    for seed, dtype, scale in ((46, np.float32, 50.0), (47, np.float32, 50.0),
                               (48, np.float64, 30.0)):
        rng = np.random.default_rng(seed)
        params = [rng.uniform(-scale, scale, size=s).astype(dtype)
                  for s in ((chains, k), (chains, k, k), (chains, k, v))]
        x = rng.integers(0, v, size=(4, t)).astype(np.int32)
        fhmm = FactorialHMM(*params, semiring=semiring)
        exact = FactorialHMM(*[p.astype(np.float64) for p in params], semiring="log").log_prob(x)
        elbos = np.stack([fhmm.elbo(x, num_iterations=i).numpy() for i in range(5)])
        assert np.all(np.isfinite(elbos)), elbos
        tolerance = 1e-5 * np.abs(exact.numpy()) if dtype == np.float32 else 1e-9
        assert np.all(np.diff(elbos, axis=0) >= -tolerance), elbos
        assert np.all(elbos <= exact.numpy() + tolerance), (elbos, exact)
        marginals = fhmm.mean_field(x, num_iterations=4).marginals.numpy()
        assert np.all(marginals >= 0)
        np.testing.assert_allclose(marginals.sum(-1), 1.0, rtol=1e-5)


# TFP's HiddenMarkovModel test cases (hidden_markov_model_test.py) that map onto categorical
# emissions, each checked against its stated expectation and against tfd.HiddenMarkovModel.

def tfp_and_tflv(initial_probs, transition_probs, emission_probs, num_steps, semiring):
    probs = [np.asarray(p, np.float64) for p in (initial_probs, transition_probs, emission_probs)]
    with np.errstate(divide="ignore"):
        logits = [np.log(p) for p in probs]
    reference = tfd.HiddenMarkovModel(*[tfd.Categorical(probs=p) for p in probs],
                                      num_steps=num_steps)
    return reference, HMM(*logits, semiring=semiring)


@pytest.mark.parametrize("semiring", SUM_SEMIRINGS)
def test_tfp_coin_tosses_and_their_batch(semiring):
    coin = ([0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]])
    reference, hmm = tfp_and_tflv(*coin, 5, semiring)
    np.testing.assert_allclose(hmm.log_prob([0, 0, 0, 0, 0]), np.log(0.5 ** 5), rtol=1e-12)
    np.testing.assert_allclose(hmm.log_prob([0, 1, 1, 0, 1]),
                               reference.log_prob([0, 1, 1, 0, 1]), rtol=1e-12)
    # The batch case: initial [3, 2, 2], transitions [3, 2, 2, 2], x [7, 3, 2, 5].
    initial = np.broadcast_to(coin[0], (3, 2, 2))
    transition = np.broadcast_to(coin[1], (3, 2, 2, 2))
    _, batch = tfp_and_tflv(initial, transition, coin[2], 5, semiring)
    x = np.broadcast_to(np.array([np.zeros(5), np.ones(5)], np.int32), (7, 3, 2, 5))
    np.testing.assert_allclose(batch.log_prob(x), np.full((7, 3, 2), np.log(0.5 ** 5)),
                               rtol=1e-12)
    # One step (no transition): log 0.5.
    _, one = tfp_and_tflv(*coin, 1, semiring)
    np.testing.assert_allclose(one.log_prob([0]), np.log(0.5), rtol=1e-12)


@pytest.mark.parametrize("mode,semiring", MODES_AND_SEMIRINGS)
def test_tfp_nine_vertex_graph_posterior_marginals(mode, semiring):
    """A random walk on a 9-vertex graph with exactly one 7-vertex path from vertex 0 to 8;
    the observations say "at 0", "in 1..7" five times, "at 8": most potentials are −inf."""
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (2, 5), (5, 6), (6, 7), (6, 8)]
    transition = np.zeros((9, 9))
    for i, j in edges:
        transition[i, j] = transition[j, i] = 1.0
    transition /= transition.sum(1, keepdims=True)
    emission = np.block([[1, 0, 0], [np.zeros((7, 1)), np.ones((7, 1)), np.zeros((7, 1))],
                         [0, 0, 1]])
    reference, _ = tfp_and_tflv(np.ones(9) / 9, transition, emission, 7, semiring)
    x = tf.constant([[0, 1, 1, 1, 1, 1, 2]], tf.int32)
    with np.errstate(divide="ignore"):
        logits = [tf.constant(np.log(p)) for p in (np.ones(9) / 9, transition, emission)]

    def run(initial, transition, emission, x):
        hmm = HMM(initial, transition, emission, semiring=semiring)
        return hmm.posterior(x).unary, hmm.viterbi(x), hmm.posterior_entropy(x)

    unary, path, entropy = run_in(mode, run, logits + [x])
    expected = np.eye(9)[[0, 1, 2, 3, 4, 6, 8]]
    np.testing.assert_allclose(unary[0], expected, atol=1e-12)
    np.testing.assert_allclose(unary[0], reference.posterior_marginals(x[0]).probs_parameter(),
                               atol=1e-12)
    np.testing.assert_array_equal(path[0], [0, 1, 2, 3, 4, 6, 8])
    np.testing.assert_allclose(entropy, [0.0], atol=1e-12)


def test_tfp_posterior_mode_cases():
    """posterior_mode_high_rank_batch (identity transitions: −inf off the diagonal) and
    posterior_mode_invariance_observations (relabelled tokens give the same path)."""
    _, hmm = tfp_and_tflv([0.5, 0.5], np.eye(2), np.eye(2), 5, "auto")
    x = np.array(2 * [3 * [[5 * [0], 5 * [1]]]], np.int32)
    np.testing.assert_array_equal(hmm.viterbi(x), x)
    emission = np.array([[0.09, 0.48, 0.52, 0.11], [0.31, 0.21, 0.21, 0.27]])
    transition, initial = [[0.90, 0.10], [0.30, 0.70]], [0.65, 0.35]
    x = np.array([1, 0, 3, 1, 3, 0, 2, 1, 2, 1, 3, 0, 0, 1, 1, 2], np.int32)
    expected = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    rng = np.random.default_rng(47)
    for _ in range(4):
        relabel = rng.permutation(4)  # token v is called relabel[v]
        permuted = np.empty_like(emission)
        permuted[:, relabel] = emission
        reference, hmm = tfp_and_tflv(initial, transition, permuted, len(x), "auto")
        np.testing.assert_array_equal(hmm.viterbi(relabel[x]), expected)
        np.testing.assert_array_equal(reference.posterior_mode(relabel[x]), expected)
        np.testing.assert_allclose(hmm.log_prob(relabel[x]), reference.log_prob(relabel[x]),
                                   rtol=1e-12)


def test_forward_keeps_its_contract_for_other_chains():
    """`forward` (used by other chain models) with a Kronecker pair of factors, T = 1 in a
    graph of unknown T, and −inf potentials, against the product-state enumeration."""
    rng = np.random.default_rng(48)
    b, t = 2, 3
    factors = [rng.normal(size=(2, 2)), rng.normal(size=(3, 3))]
    factors[1][0, 2] = -INF
    joint = (factors[0][:, None, :, None] + factors[1][None, :, None, :]).reshape(6, 6)
    initial, emission = rng.normal(size=(b, 6)), rng.normal(size=(t, b, 6))

    @tf.function(input_signature=[tf.TensorSpec([None, None, 6], tf.float64)])
    def log_z(emission):
        return forward(tf.constant(initial), [tf.constant(f) for f in factors], emission).log_z

    for steps in (t, 1):
        got = log_z(tf.constant(emission[:steps]))
        for row in range(b):
            want = oracle(initial[row], joint, emission[:steps, row])["log_z"]
            np.testing.assert_allclose(got[row], want, rtol=1e-12)
