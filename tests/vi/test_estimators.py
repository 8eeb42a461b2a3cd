"""Gradient estimators against exact gradients: seeded z-tests, variance ratios, identities.

The categorical problem: B = 2 examples, K = 4 values, q(z) = softmax(φ), a joint
log p(x, z) = log_softmax(θ)_z + c (c = −5 shifts the signal so that baselines matter) and
f(z) = log p(x, z) − log q(z). Its ELBO E(φ, θ) = Σ_z q_z f_z has the closed-form gradient
∂E/∂φ_j = q_j (f_j − E) and ∂E/∂θ_j = q_j − softmax(θ)_j. Each estimator is evaluated R times
at once by tiling (φ, θ) into R independent replicas, so one gradient call yields R estimates.
"""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.layers import BaselineHead
from tflv.vi import estimators, iwae_bound

tfd = tfp.distributions

B, K, OFFSET = 2, 4, -5.0
PHI = np.array([[0.5, -0.3, 1.2, 0.0], [-1.0, 0.4, 0.2, 0.9]])
THETA = np.array([[0.1, 1.5, -0.5, 0.3], [0.8, -0.2, 0.0, -1.1]])
R, S = 4000, 4
Z_LIMIT = 4.5  # |z| bound per coordinate (16 coordinates per estimator)


def _signal(phi, theta, z):
    """z: int [S, R, B] → (log q(z) [S, R, B], f(z) [S, R, B]); phi, theta: [R, B, K]."""
    one_hot = tf.one_hot(z, K, dtype=tf.float64)
    log_q = tf.reduce_sum(one_hot * tf.nn.log_softmax(phi), -1)
    log_joint = tf.reduce_sum(one_hot * (tf.nn.log_softmax(theta) + OFFSET), -1)
    return log_q, log_joint - log_q


def _exact_gradient():
    q = tf.nn.softmax(PHI).numpy()
    f = tf.nn.log_softmax(THETA).numpy() + OFFSET - np.log(q)
    elbo = (q * f).sum(-1, keepdims=True)
    return np.concatenate([(q * (f - elbo)).ravel(), (q - tf.nn.softmax(THETA).numpy()).ravel()])


def _replicated_gradients(surrogate_fn, seed, num_samples=S, replicas=R):
    """surrogate_fn(log_q [S,R,B], f [S,R,B], phi, theta) → [R, B]; returns estimates [R, 2BK]."""
    phi = tf.tile(tf.constant(PHI)[None], [replicas, 1, 1])
    theta = tf.tile(tf.constant(THETA)[None], [replicas, 1, 1])
    z = tf.random.stateless_categorical(tf.reshape(phi, [-1, K]), num_samples, seed=[seed, 0])
    z = tf.transpose(tf.reshape(z, [replicas, B, num_samples]), [2, 0, 1])  # [S, R, B]
    with tf.GradientTape() as tape:
        tape.watch([phi, theta])
        log_q, f = _signal(phi, theta, z)
        total = tf.reduce_sum(surrogate_fn(log_q, f, phi, theta))
    g_phi, g_theta = tape.gradient(total, [phi, theta])
    return np.concatenate([g_phi.numpy().reshape(replicas, -1),
                           g_theta.numpy().reshape(replicas, -1)], axis=1)


def _z_scores(estimates, exact):
    mean, se = estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(len(estimates))
    return np.where(se > 0, (mean - exact) / np.where(se > 0, se, 1.0),
                    np.where(np.isclose(mean, exact, atol=1e-12), 0.0, np.inf))


def _total_variance(estimates):
    return estimates.var(0, ddof=1).sum()


def test_exact_matches_closed_form_gradient_and_value():
    phi, theta = tf.constant(PHI), tf.constant(THETA)
    with tf.GradientTape() as tape:
        tape.watch([phi, theta])
        log_q = tf.nn.log_softmax(phi)
        f = tf.nn.log_softmax(theta) + OFFSET - log_q
        value = estimators.exact(log_q, f)
        total = tf.reduce_sum(value)
    g = tape.gradient(total, [phi, theta])
    np.testing.assert_allclose(np.concatenate([t.numpy().ravel() for t in g]), _exact_gradient(),
                               rtol=1e-12, atol=1e-12)
    q = tf.nn.softmax(PHI).numpy()
    np.testing.assert_allclose(value, (q * f.numpy()).sum(-1), rtol=1e-12)


def _no_baseline(log_q, f, phi, theta):
    return estimators.score_function(log_q, f)


def _leave_one_out(log_q, f, phi, theta):
    return estimators.score_function(log_q, f, baseline=estimators.leave_one_out_baseline(f))


@pytest.fixture(scope="module")
def plain_score_function():
    return _replicated_gradients(_no_baseline, seed=1)


def test_score_function_is_unbiased(plain_score_function):
    assert np.abs(_z_scores(plain_score_function, _exact_gradient())).max() < Z_LIMIT


def test_z_test_detects_a_sample_dependent_baseline():
    """Power check: b_s = f(z_s) cancels the score term and leaves a biased estimator."""
    biased = _replicated_gradients(
        lambda log_q, f, phi, theta: estimators.score_function(log_q, f, baseline=f), seed=2)
    assert np.abs(_z_scores(biased, _exact_gradient())).max() > 10 * Z_LIMIT


def test_leave_one_out_baseline_is_unbiased_and_reduces_variance(plain_score_function):
    estimates = _replicated_gradients(_leave_one_out, seed=3)
    assert np.abs(_z_scores(estimates, _exact_gradient())).max() < Z_LIMIT
    assert _total_variance(estimates) / _total_variance(plain_score_function) < 0.2


def test_moving_average_baseline_is_unbiased_and_reduces_variance(plain_score_function):
    baseline = estimators.MovingAverageBaseline(decay=0.8)
    q = tf.nn.softmax(PHI).numpy()
    expected_signal = (q * (tf.nn.log_softmax(THETA).numpy() + OFFSET - np.log(q))).sum(-1)
    warm = tf.constant(np.tile(expected_signal, [S, 1]))  # [S, B]
    assert float(baseline(warm)) == 0.0  # nothing seen yet
    for _ in range(30):
        baseline(warm)
    value = float(baseline.average / (1 - 0.8 ** float(baseline.count)))
    np.testing.assert_allclose(value, expected_signal.mean(), rtol=1e-6)
    estimates = _replicated_gradients(
        lambda log_q, f, phi, theta: estimators.score_function(log_q, f, baseline=baseline(f)),
        seed=4)
    assert np.abs(_z_scores(estimates, _exact_gradient())).max() < Z_LIMIT
    assert _total_variance(estimates) / _total_variance(plain_score_function) < 0.2


def test_learned_baseline_fits_the_expected_signal_and_reduces_variance(plain_score_function):
    """A linear BaselineHead on one-hot example features, fitted through the surrogate alone."""
    features = tf.eye(B, dtype=tf.float32)
    head = BaselineHead()
    optimizer = keras.optimizers.Adam(0.2)
    phi, theta = tf.constant(PHI), tf.constant(THETA)
    for step in range(150):
        z = tf.transpose(tf.random.stateless_categorical(phi, S, seed=[step, 7]))  # [S, B]
        with tf.GradientTape() as tape:
            log_q, f = _signal(phi[None], theta[None], z[:, None])  # [S, 1, B]
            b = tf.cast(head(features), tf.float64)  # [B]
            surrogate = estimators.score_function(log_q, f, baseline=b)
            np.testing.assert_allclose(surrogate, tf.reduce_mean(f, 0), rtol=1e-12)  # value = f̄
            loss = -tf.reduce_sum(surrogate)
        optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_weights),
                                      head.trainable_weights))
    q = tf.nn.softmax(PHI).numpy()
    expected_signal = (q * (tf.nn.log_softmax(THETA).numpy() + OFFSET - np.log(q))).sum(-1)
    np.testing.assert_allclose(head(features).numpy(), expected_signal, atol=0.25)
    b = tf.cast(head(features), tf.float64)
    estimates = _replicated_gradients(
        lambda log_q, f, phi, theta: estimators.score_function(log_q, f, baseline=b), seed=5)
    assert np.abs(_z_scores(estimates, _exact_gradient())).max() < Z_LIMIT
    assert _total_variance(estimates) / _total_variance(plain_score_function) < 0.2


def _iwae_objective_exact(phi, theta, num_samples):
    """E over all K^S tuples of log (1/S) Σ_s w(z_s): [B]."""
    tuples = np.array(list(itertools.product(range(K), repeat=num_samples))).T  # [S, K^S]
    z = tf.constant(np.repeat(tuples[:, :, None], B, axis=2))  # [S, K^S, B]
    log_q, f = _signal(phi[None], theta[None], z)  # [S, K^S, B]
    prob = tf.exp(tf.reduce_sum(log_q, 0))  # [K^S, B]
    return tf.reduce_sum(prob * iwae_bound(f), 0)


def test_vimco_is_unbiased_for_the_multi_sample_bound():
    num_samples = 3
    phi, theta = tf.constant(PHI), tf.constant(THETA)
    with tf.GradientTape() as tape:
        tape.watch([phi, theta])
        objective = tf.reduce_sum(_iwae_objective_exact(phi, theta, num_samples))
    exact = np.concatenate([g.numpy().ravel() for g in tape.gradient(objective, [phi, theta])])
    estimates = _replicated_gradients(
        lambda log_q, f, phi, theta: estimators.vimco(log_q, f), seed=6, num_samples=num_samples)
    assert np.abs(_z_scores(estimates, exact)).max() < Z_LIMIT
    # value: the IWAE estimate itself
    log_w = tf.constant(np.random.RandomState(0).randn(num_samples, B))
    np.testing.assert_allclose(estimators.vimco(tf.zeros_like(log_w), log_w), iwae_bound(log_w),
                               rtol=1e-12)


def _relaxed_signal(phi, theta, direct=True):
    """f(z) = Σ_k z_k (log p(x, k) − log q(k)), linear in z; `direct=False` stops the gradient
    of the coefficients, leaving only the path through z."""
    def fn(z):  # z: [S, R, B, K] relaxed (or one-hot) samples
        coefficients = tf.nn.log_softmax(theta) + OFFSET - tf.nn.log_softmax(phi)
        if not direct:
            coefficients = tf.stop_gradient(coefficients)
        return tf.reduce_sum(z * coefficients, -1)
    return fn


def _gumbel_gradients(temperature, seed, straight_through=False, replicas=R, direct=True):
    phi = tf.tile(tf.constant(PHI)[None], [replicas, 1, 1])
    theta = tf.tile(tf.constant(THETA)[None], [replicas, 1, 1])
    with tf.GradientTape() as tape:
        tape.watch([phi, theta])
        value = estimators.gumbel_softmax(phi, _relaxed_signal(phi, theta, direct), temperature,
                                          num_samples=1, seed=[seed, 1],
                                          straight_through=straight_through)
        total = tf.reduce_sum(value)
    grads = tape.gradient(total, [phi, theta], unconnected_gradients="zero")
    return value, np.concatenate([g.numpy().reshape(replicas, -1) for g in grads], axis=1)


def test_gumbel_softmax_bias_shrinks_with_temperature():
    exact = _exact_gradient()
    biases = []
    for temperature in (2.0, 0.5, 0.1):
        _, estimates = _gumbel_gradients(temperature, seed=8, replicas=20000)
        mean, se = estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(len(estimates))
        biases.append((np.linalg.norm(mean - exact), np.linalg.norm(se)))
    (b_hot, se_hot), (b_mid, se_mid), (b_cold, se_cold) = biases
    assert b_hot > b_mid + 3 * (se_hot + se_mid)
    assert b_mid > b_cold + 3 * (se_mid + se_cold)


def test_straight_through_forward_is_one_hot_and_backward_is_relaxed():
    value_st, grads_st = _gumbel_gradients(0.5, seed=9, straight_through=True, replicas=8,
                                           direct=False)
    _, grads_relaxed = _gumbel_gradients(0.5, seed=9, replicas=8, direct=False)
    # with constant coefficients ∂f/∂z is the same at the hard and the relaxed sample
    np.testing.assert_allclose(grads_st, grads_relaxed, rtol=1e-10, atol=1e-12)
    assert np.abs(grads_st).max() > 0
    phi = tf.tile(tf.constant(PHI)[None], [8, 1, 1])
    relaxed = tfd.RelaxedOneHotCategorical(tf.constant(0.5, tf.float64), logits=phi).sample(
        1, seed=[9, 1])
    hard = tf.one_hot(tf.argmax(relaxed, -1), K, dtype=tf.float64)
    expected = _relaxed_signal(phi, tf.tile(tf.constant(THETA)[None], [8, 1, 1]))(hard)[0]
    np.testing.assert_allclose(value_st, expected, rtol=1e-12)


# ---- reparameterization vs score function on a conjugate Gaussian model --------------------
X_OBS, MU0, LOG_SIGMA0 = 1.5, 0.3, -0.4


def _gaussian_elbo(mu, log_sigma):
    """ELBO of z ~ N(0,1), x | z ~ N(z, 1) under q = N(mu, sigma²), closed form."""
    var = tf.exp(2 * log_sigma)
    return (-np.log(2 * np.pi) - 0.5 * ((X_OBS - mu) ** 2 + var) - 0.5 * (mu ** 2 + var)
            + 0.5 * np.log(2 * np.pi * np.e) + log_sigma)


def _gaussian_gradients(use_score_function, seed, replicas=R, num_samples=1):
    mu = tf.fill([replicas], tf.constant(MU0, tf.float64))
    log_sigma = tf.fill([replicas], tf.constant(LOG_SIGMA0, tf.float64))
    eps = tf.random.stateless_normal([num_samples, replicas], seed=[seed, 2], dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([mu, log_sigma])
        q = tfd.Normal(mu, tf.exp(log_sigma))
        z = mu + tf.exp(log_sigma) * eps  # [S, R]
        if use_score_function:
            z = tf.stop_gradient(z)
        f = (tfd.Normal(z, 1.0).log_prob(tf.constant(X_OBS, tf.float64))
             + tfd.Normal(tf.constant(0.0, tf.float64), 1.0).log_prob(z) - q.log_prob(z))
        value = (estimators.score_function(q.log_prob(z), f) if use_score_function
                 else estimators.reparameterized(f, q))
        total = tf.reduce_sum(value)
    grads = tape.gradient(total, [mu, log_sigma])
    return np.stack([g.numpy() for g in grads], axis=1)  # [R, 2]


def test_reparameterized_is_unbiased_and_beats_the_score_function():
    mu, log_sigma = tf.constant(MU0, tf.float64), tf.constant(LOG_SIGMA0, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([mu, log_sigma])
        objective = _gaussian_elbo(mu, log_sigma)
    exact = np.array([g.numpy() for g in tape.gradient(objective, [mu, log_sigma])])
    reparam = _gaussian_gradients(False, seed=10)
    score = _gaussian_gradients(True, seed=11)
    assert np.abs(_z_scores(reparam, exact)).max() < Z_LIMIT
    assert np.abs(_z_scores(score, exact)).max() < Z_LIMIT
    assert _total_variance(reparam) / _total_variance(score) < 0.3


def test_score_function_under_tf_function_with_unknown_shapes():
    spec = tf.TensorSpec([None, None], tf.float64)
    compiled = tf.function(estimators.score_function, input_signature=[spec, spec, spec])
    rng = np.random.RandomState(1)
    log_q, f, b = (tf.constant(rng.randn(3, 5)) for _ in range(3))
    np.testing.assert_allclose(compiled(log_q, f, b), estimators.score_function(log_q, f, b),
                               rtol=1e-12)
    np.testing.assert_allclose(compiled(log_q, f, b), tf.reduce_mean(f, 0), rtol=1e-12)


def test_bad_input_gives_clear_errors():
    logits = tf.zeros([2, 3])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        estimators.gumbel_softmax(logits, lambda z: z[..., 0], temperature=0.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be > 0"):
        estimators.gumbel_softmax(logits, lambda z: z[..., 0], temperature=tf.constant(-1.0))
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        estimators.gumbel_softmax(logits, lambda z: z[..., 0], 1.0, num_samples=0)
    with pytest.raises(ValueError, match="leading sample axis"):
        estimators.score_function(tf.zeros([4]), tf.zeros([4]))
    with pytest.raises(ValueError, match="same shape"):
        estimators.score_function(tf.zeros([2, 4]), tf.zeros([3, 4]))
    with pytest.raises(ValueError, match="at least 2 samples"):
        estimators.leave_one_out_baseline(tf.zeros([1, 4]))
    with pytest.raises(ValueError, match="at least 2 samples"):
        estimators.vimco(tf.zeros([1, 4]), tf.zeros([1, 4]))
    with pytest.raises(ValueError, match="not fully reparameterized"):
        estimators.reparameterized(tf.zeros([1, 2]), tfd.Categorical(logits=logits))
    with pytest.raises(ValueError, match="decay"):
        estimators.MovingAverageBaseline(decay=1.0)
