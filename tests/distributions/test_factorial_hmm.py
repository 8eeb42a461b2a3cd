"""Tests of tflv.distributions.FactorialHMM: exact likelihood against enumeration and against
an HMM on the explicit product state space, and the mean-field bound's defining properties."""
import itertools

import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from tflv.distributions import HMM, FactorialHMM


def random_factorial(rng, chains, k, v, scale=1.0):
    return (scale * rng.normal(size=(chains, k)), scale * rng.normal(size=(chains, k, k)),
            scale * rng.normal(size=(chains, k, v)))


def product_state_hmm(initial, transition, emission):
    """The equivalent HMM on S = K^L joint states (chain 0 most significant), as log-probs:
    initial [S], transition [S, S] (the naive K^(2L) matrix), emission [S, V]."""
    log_softmax = lambda a: scipy.special.log_softmax(a, axis=-1)  # noqa: E731
    chains, k = initial.shape
    states = list(itertools.product(range(k), repeat=chains))
    init, trans, emit = log_softmax(initial), log_softmax(transition), emission
    joint_init = np.array([sum(init[l, s[l]] for l in range(chains)) for s in states])
    joint_trans = np.array([[sum(trans[l, s[l], r[l]] for l in range(chains)) for r in states]
                            for s in states])
    joint_emit = log_softmax(np.array([sum(emit[l, s[l]] for l in range(chains))
                                       for s in states]))
    return joint_init, joint_trans, joint_emit


def enumerate_log_prob(joint_init, joint_trans, joint_emit, x):
    """log p(x) by summing over all S^T joint paths."""
    scores = [joint_init[z[0]] + sum(joint_trans[z[t - 1], z[t]] for t in range(1, len(x)))
              + sum(joint_emit[z[t], x[t]] for t in range(len(x)))
              for z in itertools.product(range(len(joint_init)), repeat=len(x))]
    return scipy.special.logsumexp(scores)


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_exact_log_prob_matches_enumeration(mode):
    rng = np.random.default_rng(20)
    chains, k, v, t, lengths = 2, 2, 4, 3, [3, 2, 1]
    params = random_factorial(rng, chains, k, v)
    x = rng.integers(0, v, size=(len(lengths), t)).astype(np.int32)
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]

    def run(x, mask):
        return [FactorialHMM(*params, semiring=s).log_prob(x, mask) for s in ("scaled", "log")]

    if mode == "graph":
        run = tf.function(run, input_signature=[tf.TensorSpec([None, None], tf.int32),
                                                tf.TensorSpec([None, None], tf.bool)])
    joint = product_state_hmm(*params)
    expected = [enumerate_log_prob(*joint, x[b, :n]) for b, n in enumerate(lengths)]
    for log_prob in run(x, mask):
        np.testing.assert_allclose(log_prob, expected, rtol=1e-12)


def test_chain_by_chain_update_equals_the_product_state_hmm():
    """L = 3 chains of K = 3 (S = 27): Kronecker updates vs the naive S x S transition matrix."""
    rng = np.random.default_rng(21)
    chains, k, v, t, lengths = 3, 3, 5, 6, [6, 4, 1]
    params = random_factorial(rng, chains, k, v, scale=2.0)
    x = rng.integers(0, v, size=(len(lengths), t)).astype(np.int32)
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]
    naive = HMM(*product_state_hmm(*params)).log_prob(x, mask)
    np.testing.assert_allclose(FactorialHMM(*params).log_prob(x, mask), naive, rtol=1e-12)


def test_mean_field_with_one_chain_is_exact():
    rng = np.random.default_rng(22)
    params = random_factorial(rng, 1, 3, 5)
    x = rng.integers(0, 5, size=(2, 6)).astype(np.int32)
    mask = np.arange(6)[None, :] < np.array([[6], [3]])
    fhmm = FactorialHMM(*params)
    result = fhmm.mean_field(x, mask, num_iterations=2)
    np.testing.assert_allclose(result.elbo, fhmm.log_prob(x, mask), rtol=1e-12)
    exact = HMM(*(p[0] for p in params)).posterior(x, mask).unary
    np.testing.assert_allclose(result.marginals[:, :, 0], exact, atol=1e-12)


def test_mean_field_is_exact_when_other_chains_do_not_emit():
    """A chain whose emission logits are constant leaves p(x | z) unchanged: it is independent
    of x a posteriori, the factorised posterior is the true one and the bound is tight."""
    rng = np.random.default_rng(23)
    initial, transition, emission = random_factorial(rng, 2, 3, 4)
    emission[1] = 0.7
    x = rng.integers(0, 4, size=(3, 5)).astype(np.int32)
    fhmm = FactorialHMM(initial, transition, emission)
    np.testing.assert_allclose(fhmm.elbo(x, num_iterations=3), fhmm.log_prob(x), rtol=1e-12)


def test_mean_field_bound_increases_to_below_the_exact_log_prob():
    rng = np.random.default_rng(24)
    chains, k, v, t, lengths = 3, 2, 4, 5, [5, 3]
    params = random_factorial(rng, chains, k, v, scale=2.0)
    x = rng.integers(0, v, size=(2, t)).astype(np.int32)
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]
    fhmm = FactorialHMM(*params)
    exact = fhmm.log_prob(x, mask).numpy()
    elbos = np.stack([fhmm.elbo(x, mask, num_iterations=i).numpy() for i in range(6)])
    assert np.all(np.diff(elbos, axis=0) >= -1e-12), elbos
    assert np.all(elbos[-1] - elbos[0] > 1e-3), elbos  # coordinate ascent did something
    assert np.all(elbos <= exact[None] + 1e-12), (elbos, exact)
    marginals = fhmm.mean_field(x, mask, 5).marginals.numpy()
    np.testing.assert_allclose(marginals[mask].sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(marginals[~mask], 0.0)


def test_mean_field_in_graph_mode_and_its_gradient():
    """Under tf.function with unknown shapes the bound equals the eager one; at convergence its
    gradient (q held fixed) is the total derivative (envelope theorem), checked by central
    differences along random directions."""
    rng = np.random.default_rng(25)
    params = [tf.constant(p) for p in random_factorial(rng, 2, 2, 3)]
    x = tf.constant([[0, 2, 1, 1], [1, 0, 2, 0]])
    mask = tf.constant([[True] * 4, [True, True, True, False]])

    @tf.function(input_signature=[tf.TensorSpec(p.shape, tf.float64) for p in params] + [
        tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.bool),
        tf.TensorSpec([], tf.int32)])
    def elbo_and_gradient(initial, transition, emission, x, mask, num_iterations):
        args = [initial, transition, emission]
        with tf.GradientTape() as tape:
            tape.watch(args)
            elbo = FactorialHMM(*args).elbo(x, mask, num_iterations)
        return elbo, tape.gradient(elbo, args)

    eager = FactorialHMM(*params).elbo(x, mask, num_iterations=2)
    np.testing.assert_allclose(elbo_and_gradient(*params, x, mask, 2)[0], eager, rtol=1e-12)
    _, gradient = elbo_and_gradient(*params, x, mask, 40)
    step = 1e-5
    for _ in range(3):
        direction = [rng.normal(size=p.shape) for p in params]
        plus, minus = (tf.reduce_sum(elbo_and_gradient(
            *[p + sign * step * d for p, d in zip(params, direction)], x, mask, 40)[0])
            for sign in (1.0, -1.0))
        numerical = (plus - minus) / (2 * step)
        analytic = sum(np.sum(g * d) for g, d in zip(gradient, direction))
        np.testing.assert_allclose(analytic, numerical, rtol=1e-6)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(26)
    initial, transition, emission = random_factorial(rng, 2, 3, 4)
    with pytest.raises(ValueError, match="number of states K"):
        FactorialHMM(initial, transition[:, :2, :2], emission)
    with pytest.raises(ValueError, match="number of chains L"):
        FactorialHMM(initial, transition[:1], emission)
    with pytest.raises(ValueError, match="rank"):
        FactorialHMM(initial[0], transition, emission)
    with pytest.raises(tf.errors.InvalidArgumentError, match="token ids"):
        FactorialHMM(initial, transition, emission).log_prob([[0, 4]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="prefix"):
        FactorialHMM(initial, transition, emission).elbo([[0, 1]], mask=[[False, True]])
