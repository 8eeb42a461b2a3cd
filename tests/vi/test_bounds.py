"""IWAE bound and importance-sampled log p(x) on a conjugate Gaussian model.

z ~ N(0, 1), x | z ~ N(z, s²): log p(x) = log N(x; 0, 1 + s²) and the posterior is
N(x / (1 + s²), s² / (1 + s²)).
"""
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.vi import importance_sampled_log_marginal, iwae_bound

tfd = tfp.distributions

NOISE = 0.5
X = np.array([-1.0, 0.3, 2.0])


def _log_joint(x):
    x = tf.convert_to_tensor(x, tf.float64)

    def fn(z):  # z: [K, B] → [K, B]
        return (tfd.Normal(tf.constant(0.0, tf.float64), 1.0).log_prob(z)
                + tfd.Normal(z, NOISE).log_prob(x))
    return fn


def _exact_log_marginal(x):
    return scipy.stats.norm(0.0, np.sqrt(1.0 + NOISE ** 2)).logpdf(x)


def _posterior(x, shift=0.0, widen=1.0):
    precision = 1.0 + 1.0 / NOISE ** 2
    loc = tf.constant(x / NOISE ** 2 / precision + shift)
    return tfd.Normal(loc, tf.constant(widen / np.sqrt(precision), tf.float64) * tf.ones_like(loc))


def test_exact_posterior_proposal_gives_log_marginal_for_any_k():
    def estimate(x):
        return importance_sampled_log_marginal(_log_joint(x), _posterior(x), 7, seed=[1, 2])

    # posterior() builds constants from numpy: evaluate eagerly, and the bound alone compiled
    np.testing.assert_allclose(estimate(X), _exact_log_marginal(X), rtol=1e-10)
    compiled = tf.function(iwae_bound, input_signature=[tf.TensorSpec([None, None], tf.float64)])
    log_w = tf.constant(np.tile(_exact_log_marginal(X), [5, 1]))
    np.testing.assert_allclose(compiled(log_w), _exact_log_marginal(X), rtol=1e-12)


def test_iwae_bound_rises_with_k_and_converges_to_log_marginal():
    """A shifted, widened proposal; R replicas of each x along the batch axis."""
    replicas = 2000
    x = np.repeat(X, replicas)
    proposal = _posterior(x, shift=0.4, widen=1.5)
    means, ses = [], []
    for k in (1, 3, 10, 1000):
        est = importance_sampled_log_marginal(_log_joint(x), proposal, k, seed=[k, 0]).numpy()
        est = est.reshape(len(X), replicas)
        means.append(est.mean(1))
        ses.append(est.std(1, ddof=1) / np.sqrt(replicas))
    means, ses = np.array(means), np.array(ses)  # [4 K's, B]
    exact = _exact_log_marginal(X)
    assert np.all(means[1:] - means[:-1] > 3 * np.sqrt(ses[1:] ** 2 + ses[:-1] ** 2))
    assert np.all(means < exact[None] + 3 * ses)  # a lower bound
    np.testing.assert_allclose(means[-1], exact, atol=0.01)


def test_iwae_bound_is_stable_and_k1_is_the_elbo():
    log_w = tf.constant([[1000.0, -1000.0], [1000.0 + np.log(3.0), -1001.0]], tf.float64)
    np.testing.assert_allclose(iwae_bound(log_w), [1000.0 + np.log(2.0), -1000.0 + np.log(
        (1 + np.exp(-1.0)) / 2)], rtol=1e-14)
    np.testing.assert_allclose(iwae_bound(log_w[:1]), log_w[0], rtol=1e-14)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="K >= 1"):
        iwae_bound(tf.zeros([0, 3]))
    with pytest.raises(ValueError, match="leading sample axis"):
        iwae_bound(tf.constant(1.0))
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        importance_sampled_log_marginal(_log_joint(X), _posterior(X), 0)


@pytest.mark.parametrize("num_samples, chunk", [(7, 3), (6, 3), (5, 1), (4, 9)])
def test_in_chunks_equals_one_call_and_calls_fn_chunk_samples_at_a_time(num_samples, chunk):
    from tflv.vi import in_chunks
    z = tf.constant(np.random.default_rng(0).normal(size=(num_samples, 2, 3)), tf.float32)
    seen = []

    def fn(z_c):  # a per-sample computation [c, B, D] -> [c, B]
        seen.append(z_c.shape[0])
        return tf.reduce_sum(tf.sin(z_c) * tf.range(1.0, 4.0), axis=-1)

    got = in_chunks(fn, num_samples, chunk)(z)
    np.testing.assert_allclose(got.numpy(), fn(z).numpy(), rtol=1e-6)
    assert seen[0] == min(chunk, num_samples)  # map_fn traces fn once, on one slice
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        in_chunks(fn, num_samples, 0)
