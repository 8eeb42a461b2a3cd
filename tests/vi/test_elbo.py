"""ELBO, KL (closed form and Monte Carlo), β and free bits against closed forms."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.vi import elbo, kl_divergence

tfd, tfb = tfp.distributions, tfp.bijectors

RNG = np.random.RandomState(0)
LOC, SCALE = RNG.randn(3, 2), np.exp(0.3 * RNG.randn(3, 2))  # q: [B=3], event [D=2]


def _kl_diag_gaussians_numpy(loc, scale):
    """KL(N(loc, diag scale²) || N(0, I)) per dimension, float64."""
    return 0.5 * (scale ** 2 + loc ** 2 - 1.0) - np.log(scale)


def _posterior():
    return tfd.MultivariateNormalDiag(tf.constant(LOC), tf.constant(SCALE))


def _prior():
    return tfd.MultivariateNormalDiag(tf.zeros([2], tf.float64), tf.ones([2], tf.float64))


def _opaque_prior():
    """N(0, I) that TFP has no registered KL for (forces the Monte Carlo path)."""
    return tfd.TransformedDistribution(_prior(), tfb.Identity())


def test_closed_form_kl_and_per_dimension():
    expected = _kl_diag_gaussians_numpy(LOC, SCALE)
    np.testing.assert_allclose(kl_divergence(_posterior(), _prior()), expected.sum(-1),
                               rtol=1e-12)
    np.testing.assert_allclose(kl_divergence(_posterior(), _prior(), per_dimension=True),
                               expected, rtol=1e-12)
    independent = tfd.Independent(tfd.Normal(tf.constant(LOC), tf.constant(SCALE)), 1)
    np.testing.assert_allclose(kl_divergence(independent, _prior(), per_dimension=True),
                               expected, rtol=1e-12)


def test_monte_carlo_kl_on_given_samples_and_through_tfp_vi():
    expected = _kl_diag_gaussians_numpy(LOC, SCALE).sum(-1)
    q, p = _posterior(), _opaque_prior()
    with pytest.raises(NotImplementedError):
        tfd.kl_divergence(q, p)
    num = 20000
    z = q.sample(num, seed=[1, 2])  # [S, B, D]
    log_ratio = (q.log_prob(z) - p.log_prob(z)).numpy()
    se = log_ratio.std(0) / np.sqrt(num)
    estimate = kl_divergence(q, p, z=z).numpy()
    np.testing.assert_allclose(estimate, log_ratio.mean(0), rtol=1e-12)
    assert np.all(np.abs(estimate - expected) < 4 * se)
    drawn = kl_divergence(q, p, num_samples=num, seed=[3, 4]).numpy()  # tfp.vi path
    assert drawn.shape == (3,) and np.all(np.abs(drawn - expected) < 4 * se)
    per_dim = kl_divergence(tfd.Independent(tfd.Normal(tf.constant(LOC), tf.constant(SCALE)), 1),
                            tfd.Independent(tfd.Logistic(tf.zeros([2], tf.float64),
                                                         tf.ones([2], tf.float64)), 1),
                            z=z, per_dimension=True)
    assert per_dim.shape == (3, 2)


def test_elbo_terms_beta_and_tf_function_with_unknown_shapes():
    rng = np.random.RandomState(1)
    log_likelihood = rng.randn(4, 3)  # [S, B]
    expected_kl = _kl_diag_gaussians_numpy(LOC, SCALE).sum(-1)

    def terms(ll, loc, scale):
        out = elbo(ll, tfd.MultivariateNormalDiag(loc, scale), _prior(), kl_weight=0.3)
        return out.elbo, out.objective, out.reconstruction, out.kl

    spec = [tf.TensorSpec([None, None], tf.float64)] * 3
    for fn in (terms, tf.function(terms, input_signature=spec)):
        value, objective, reconstruction, kl = fn(tf.constant(log_likelihood), tf.constant(LOC),
                                                  tf.constant(SCALE))
        np.testing.assert_allclose(reconstruction, log_likelihood.mean(0), rtol=1e-12)
        np.testing.assert_allclose(kl, expected_kl, rtol=1e-12)
        np.testing.assert_allclose(value, log_likelihood.mean(0) - expected_kl, rtol=1e-12)
        np.testing.assert_allclose(objective, log_likelihood.mean(0) - 0.3 * expected_kl,
                                   rtol=1e-12)


def _check_free_bits(free_bits, per_dimension):
    kl_parts = _kl_diag_gaussians_numpy(LOC, SCALE)  # [B, D]
    means = kl_parts.mean(0) if per_dimension else np.array([kl_parts.sum(-1).mean()])
    loc = tf.Variable(LOC)
    with tf.GradientTape() as tape:
        out = elbo(tf.zeros([3], tf.float64), tfd.MultivariateNormalDiag(loc, tf.constant(SCALE)),
                   _prior(), free_bits=free_bits, free_bits_per_dimension=per_dimension)
        loss = -tf.reduce_sum(out.objective)
    expected = np.maximum(free_bits, means).sum()  # Kingma et al. (2016), eq. 15
    np.testing.assert_allclose(-tf.reduce_mean(out.objective), expected, rtol=1e-12)
    np.testing.assert_allclose(out.kl, kl_parts.sum(-1), rtol=1e-12)  # the reported KL
    grad = tape.gradient(loss, loc, unconnected_gradients="zero").numpy()
    active = (means > free_bits) if per_dimension else np.repeat(means > free_bits, 2)
    # ∂KL/∂loc = loc on the dimensions whose KL counts, 0 where free bits clamp it
    np.testing.assert_allclose(grad, np.where(active[None, :], LOC, 0.0), rtol=1e-12)


def test_free_bits_total_batch_mean_is_the_clamped_kl():
    total = _kl_diag_gaussians_numpy(LOC, SCALE).sum(-1).mean()
    for free_bits in (total - 0.1, total + 0.1):  # active, clamped
        _check_free_bits(float(free_bits), per_dimension=False)


def test_free_bits_per_dimension_clamps_each_dimension():
    means = _kl_diag_gaussians_numpy(LOC, SCALE).mean(0)
    assert abs(means[0] - means[1]) > 0.05  # λ between them: one dimension clamped, one not
    _check_free_bits(float(means.mean()), per_dimension=True)


def test_bad_input_gives_clear_errors():
    q = _posterior()
    with pytest.raises(ValueError, match="event shape"):
        kl_divergence(q, tfd.MultivariateNormalDiag(tf.zeros([3], tf.float64)))
    with pytest.raises(ValueError, match="does not end in the posterior"):
        kl_divergence(q, _opaque_prior(), z=tf.zeros([5, 3, 4], tf.float64))
    with pytest.raises(ValueError, match="factorized posterior"):
        kl_divergence(tfd.MultivariateNormalTriL(tf.constant(LOC), tf.eye(2, dtype=tf.float64)),
                      _prior(), per_dimension=True)
    with pytest.raises(ValueError, match="log_likelihood has shape"):
        elbo(tf.zeros([2, 4, 3], tf.float64), q, _prior())
    with pytest.raises(ValueError, match="free_bits"):
        elbo(tf.zeros([3], tf.float64), q, _prior(), free_bits=-1.0)
    with pytest.raises(ValueError, match="num_samples"):
        kl_divergence(q, _opaque_prior(), num_samples=0)
