"""Heads: the conformance suite, and each head's parameters and distribution checked."""
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tests.layer_test_case import run_layer_test
from tflv.layers import (AutoregressiveNetwork, BaselineHead, CategoricalHead, GaussianHead,
                         PlanarFlowHead, VMFHead, gaussian, von_mises_fisher)

tfd = tfp.distributions
FEATURES = tf.constant(np.random.RandomState(0).randn(3, 5), tf.float32)


def test_gaussian_head_and_distribution():
    loc, scale = run_layer_test(GaussianHead, dict(latent_dim=4), FEATURES,
                                expected_output_shape=((3, 4), (3, 4)))
    assert np.all(scale.numpy() > 0)
    q = gaussian((loc, scale))
    assert isinstance(q, tfd.MultivariateNormalDiag) and q.event_shape == (4,)
    z = np.zeros((3, 4), np.float32)
    expected = scipy.stats.norm(loc.numpy(), scale.numpy()).logpdf(z).sum(-1)
    np.testing.assert_allclose(q.log_prob(z), expected, rtol=1e-5)


def test_vmf_head_gives_unit_directions_and_a_reparameterized_vmf():
    # the helper's fit loss, mean(μ²), is constant on unit vectors: check training separately
    mu = run_layer_test(VMFHead, dict(latent_dim=4, concentration=20.0), FEATURES,
                        expected_output_shape=(3, 4), run_fit=False)
    head = VMFHead(latent_dim=4, concentration=20.0)
    with tf.GradientTape() as tape:
        first = tf.reduce_sum(head(FEATURES)[:, 0])
    assert all(np.abs(g.numpy()).sum() > 0
               for g in tape.gradient(first, head.trainable_weights))
    np.testing.assert_allclose(tf.norm(mu, axis=-1), 1.0, rtol=1e-6)
    q = von_mises_fisher(mu, 20.0)
    assert q.reparameterization_type == tfd.FULLY_REPARAMETERIZED
    np.testing.assert_allclose(q.mean_direction, mu)
    with pytest.raises(ValueError, match="latent_dim must be >= 2"):
        VMFHead(latent_dim=1, concentration=1.0)
    with pytest.raises(ValueError, match="concentration must be > 0"):
        VMFHead(latent_dim=3, concentration=0.0)


def test_categorical_and_baseline_heads():
    logits = run_layer_test(CategoricalHead, dict(num_classes=6), FEATURES,
                            expected_output_shape=(3, 6))
    head = CategoricalHead(num_classes=6)
    np.testing.assert_allclose(head(FEATURES), FEATURES.numpy() @ head.dense.kernel.numpy()
                               + head.dense.bias.numpy(), rtol=1e-5, atol=1e-6)
    assert logits.dtype == tf.float32
    run_layer_test(BaselineHead, dict(hidden_units=[4]), FEATURES, expected_output_shape=(3,))


def test_autoregressive_network_and_planar_head_conformance():
    z = tf.constant(np.random.RandomState(1).randn(3, 4), tf.float32)
    run_layer_test(AutoregressiveNetwork, dict(event_size=4, hidden_units=[8]), z,
                   expected_output_shape=(3, 4, 2))
    run_layer_test(AutoregressiveNetwork, dict(event_size=4, hidden_units=[8], conditional=True),
                   (z, FEATURES), expected_output_shape=(3, 4, 2))
    run_layer_test(PlanarFlowHead, dict(latent_dim=4, num_flows=2), FEATURES,
                   expected_output_shape=((3, 2, 4), (3, 2, 4), (3, 2)))
    with pytest.raises(ValueError, match="num_flows must be >= 1"):
        PlanarFlowHead(latent_dim=4, num_flows=0)
