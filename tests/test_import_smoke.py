"""Import smoke test: TFP 0.25 (tested upstream against TF 2.18) must import and work on TF 2.21."""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp


def test_tfp_imports_and_matches_closed_form():
    tfd = tfp.distributions
    normal = tfd.Normal(loc=tf.constant(1.0, tf.float64), scale=tf.constant(2.0, tf.float64))
    x = 0.3
    expected = -0.5 * ((x - 1.0) / 2.0) ** 2 - np.log(2.0 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(normal.log_prob(x).numpy(), expected, rtol=1e-12)
    kl = tfd.kl_divergence(normal, tfd.Normal(tf.constant(0.0, tf.float64), 1.0))
    np.testing.assert_allclose(kl.numpy(), np.log(1 / 2.0) + (4 + 1) / 2 - 0.5, rtol=1e-12)


def test_tflv_imports():
    import tflv  # noqa: F401
    from tflv.models import MODELS

    assert "rnnlm" in MODELS
