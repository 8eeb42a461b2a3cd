"""vMF with fixed concentration: KL to the uniform against Xu & Durrett's closed form, the
mean against A_D(κ) μ, and the pathwise gradient in μ against its closed form (z-tests)."""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.distributions import VonMisesFisherFixedConcentration

tfd = tfp.distributions


def _mean_resultant(kappa, dim):
    """A_D(κ) = I_{D/2}(κ) / I_{D/2−1}(κ)."""
    return scipy.special.ive(dim / 2, kappa) / scipy.special.ive(dim / 2 - 1, kappa)


def _kl_to_uniform(kappa, dim):
    """Xu & Durrett (2018): κ A_D(κ) + log C_D(κ) + log(2 π^{D/2} / Γ(D/2))."""
    log_bessel = np.log(scipy.special.ive(dim / 2 - 1, kappa)) + kappa
    log_c = (dim / 2 - 1) * np.log(kappa) - dim / 2 * np.log(2 * np.pi) - log_bessel
    log_area = np.log(2.0) + dim / 2 * np.log(np.pi) - scipy.special.gammaln(dim / 2)
    return kappa * _mean_resultant(kappa, dim) + log_c + log_area


def _unit(dim, seed):
    v = np.random.RandomState(seed).randn(dim)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("dim", [3, 5, 16])
def test_kl_to_uniform_matches_the_closed_form_and_monte_carlo(dim):
    kappas = np.array([0.5, 5.0, 50.0])
    q = VonMisesFisherFixedConcentration(tf.constant(np.tile(_unit(dim, 0), [3, 1])),
                                         tf.constant(kappas))
    uniform = tfd.SphericalUniform(dimension=dim, dtype=tf.float64)
    expected = _kl_to_uniform(kappas, dim)
    np.testing.assert_allclose(tfd.kl_divergence(q, uniform), expected, rtol=1e-8)
    z = q.sample(4000, seed=[1, 2])  # [S, 3, D]
    np.testing.assert_allclose(tf.norm(z, axis=-1), 1.0, rtol=1e-10)
    log_ratio = (q.log_prob(z) - uniform.log_prob(z)).numpy()
    se = log_ratio.std(0) / np.sqrt(len(log_ratio))
    assert np.all(np.abs(log_ratio.mean(0) - expected) < 4 * se + 1e-9)


def test_samples_are_declared_and_are_pathwise_in_the_mean_direction():
    dim, kappa, replicas = 5, 10.0, 4000
    assert tfd.VonMisesFisher(tf.constant([[1.0] + [0.0] * 4]), 10.0).reparameterization_type \
        == tfd.NOT_REPARAMETERIZED  # why the subclass exists
    a = np.random.RandomState(3).randn(dim)
    v0 = 2.0 * _unit(dim, 4)
    v = tf.constant(np.tile(v0, [replicas, 1]))
    concentration = tf.constant(kappa, tf.float64)

    def objective(v):
        q = VonMisesFisherFixedConcentration(tf.math.l2_normalize(v, -1), concentration)
        z = q.sample(seed=[5, 6])  # [R, D]
        return q, z, tf.reduce_sum(z * a, -1)

    for fn in (objective, tf.function(objective, autograph=False)):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([v, concentration])
            q, z, f = fn(v)
            total = tf.reduce_sum(f)
        assert q.reparameterization_type == tfd.FULLY_REPARAMETERIZED
        grads = tape.gradient(total, v).numpy()  # [R, D], one estimate per replica
        assert tape.gradient(total, concentration) is None  # κ is held fixed
        # E[z] = A_D(κ) μ, so ∇_v E[aᵀz] = A_D(κ) (a − (aᵀμ) μ) / ||v||
        mu, resultant = v0 / np.linalg.norm(v0), _mean_resultant(kappa, dim)
        expected_grad = resultant * (a - a.dot(mu) * mu) / np.linalg.norm(v0)
        se = grads.std(0, ddof=1) / np.sqrt(replicas)
        assert np.all(np.abs(grads.mean(0) - expected_grad) < 4.5 * se)
        z = z.numpy()
        se = z.std(0, ddof=1) / np.sqrt(replicas)
        assert np.all(np.abs(z.mean(0) - resultant * mu) < 4.5 * se)
