"""Flows: MADE's autoregressive structure, and log q of IAF / MAF / planar flows against the
change of variables with the Jacobian determinant computed by automatic differentiation."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.layers import AutoregressiveNetwork
from tflv.vi.flows import Planar, autoregressive_flow, planar_flow

tfd, tfb = tfp.distributions, tfp.bijectors

B, D, C = 3, 4, 2


def _base():
    rng = np.random.RandomState(0)
    return tfd.MultivariateNormalDiag(tf.constant(rng.randn(B, D)),
                                      tf.constant(np.exp(0.2 * rng.randn(B, D))))


def _jacobian(fn, x):
    """∂fn(x)/∂x per example, `[B, D_out, D_in]`, one output coordinate at a time.

    (`batch_jacobian`'s vectorized path does not see through the Keras layer's call.)
    """
    x = tf.constant(x.numpy())  # a fresh tensor: no bijector cache hit
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = fn(x)
        rows = [tf.reduce_sum(y[..., i]) for i in range(y.shape[-1])]
    return tf.stack([tape.gradient(r, x, unconnected_gradients="zero") for r in rows], axis=-2)


def _log_abs_det_jacobian(forward, z0):
    """log |det ∂f/∂z0| per example by brute-force autodiff; z0: [B, D]."""
    return tf.math.log(tf.abs(tf.linalg.det(_jacobian(forward, z0))))


def test_made_output_i_depends_only_on_inputs_before_i():
    made = AutoregressiveNetwork(D, hidden_units=[8, 8], conditional=True, dtype="float64")
    z = tf.constant(np.random.RandomState(1).randn(B, D))
    context = tf.constant(np.random.RandomState(2).randn(B, C))
    upper, lower = np.triu_indices(D), np.tril_indices(D, -1)
    for p in range(2):
        jacobian = _jacobian(lambda v: made((v, context))[..., p], z).numpy()  # [B, out, in]
        assert np.all(jacobian[:, upper[0], upper[1]] == 0)
        assert np.all(np.abs(jacobian[:, lower[0], lower[1]]).sum(0) > 0)
        assert np.abs(_jacobian(lambda c: made((z, c))[..., p], context).numpy()).sum() > 0


@pytest.mark.parametrize("inverse", [True, False])
def test_autoregressive_flow_log_prob_is_the_change_of_variables(inverse):
    made = AutoregressiveNetwork(D, hidden_units=[16], conditional=True, dtype="float64")
    context = tf.constant(np.random.RandomState(3).randn(B, C))
    bijector = autoregressive_flow(made, context=context, inverse=inverse)
    base = _base()
    q = tfd.TransformedDistribution(base, bijector)
    z, log_q = q.experimental_sample_and_log_prob(seed=[4, 5])  # [B, D], [B]
    z0 = bijector.inverse(z)
    expected = base.log_prob(z0) - _log_abs_det_jacobian(bijector.forward, z0)
    np.testing.assert_allclose(log_q, expected, rtol=1e-9)
    np.testing.assert_allclose(bijector.forward(z0), z, rtol=1e-9)  # a true inverse
    # samples with a sample axis: [S, B, D] against a [B, C] context
    zs, log_qs = q.experimental_sample_and_log_prob(5, seed=[6, 7])
    assert zs.shape == (5, B, D) and log_qs.shape == (5, B)


def test_planar_flow_log_det_and_invertibility_constraint():
    rng = np.random.RandomState(4)
    w = rng.randn(B, 3, D)
    u = -5.0 * w  # raw u with wᵀu ≪ −1: the constraint û must restore invertibility
    b = rng.randn(B, 3)
    bijector = planar_flow(tf.constant(u), tf.constant(w), tf.constant(b))
    base = _base()
    z0 = base.sample(seed=[8, 9])
    expected = _log_abs_det_jacobian(bijector.forward, z0)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(z0, event_ndims=1), expected,
                               rtol=1e-9)
    q = tfd.TransformedDistribution(base, bijector)
    z, log_q = q.experimental_sample_and_log_prob(seed=[8, 9])
    np.testing.assert_allclose(log_q, base.log_prob(z0) - expected, rtol=1e-9)
    # ûᵀw = m(wᵀu) = −1 + softplus(wᵀu) ≥ −1 ⇒ 1 + (1 − tanh²) ûᵀw > 0 everywhere
    single = Planar(tf.constant(u[:, 0]), tf.constant(w[:, 0]), tf.constant(b[:, 0]))
    wu_hat = tf.reduce_sum(single._u_hat * w[:, 0], -1).numpy()
    wu = (w[:, 0] * u[:, 0]).sum(-1)
    np.testing.assert_allclose(wu_hat, -1.0 + np.log1p(np.exp(wu)), rtol=1e-12)
    # one planar map in 1-D is strictly increasing: a dense grid stays sorted
    line = Planar(tf.constant([[-3.0]]), tf.constant([[2.0]]), tf.constant([0.5]))
    grid = tf.reshape(tf.linspace(-4.0, 4.0, 2001), [-1, 1, 1])
    assert np.all(np.diff(line.forward(grid).numpy().ravel()) > 0)


def test_bad_input_gives_clear_errors():
    made = AutoregressiveNetwork(D, conditional=False)
    with pytest.raises(ValueError, match="context must be given exactly"):
        autoregressive_flow(made, context=tf.zeros([B, C]))
    with pytest.raises(ValueError, match="same shape"):
        Planar(tf.zeros([B, D]), tf.ones([B, D + 1]), tf.zeros([B]))
    with pytest.raises(ValueError, match="last dimension 4"):
        AutoregressiveNetwork(D)(tf.zeros([B, D + 1]))
