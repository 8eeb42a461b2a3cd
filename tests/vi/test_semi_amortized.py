"""SA-VI refinement on a quadratic ELBO, where K steps and their derivatives are closed form.

For z ~ N(0, 1), x | z ~ N(z, s²) and q = N(m, σ²) with σ fixed, ELBO(m) = c − ½((x − m)²/s² + m²)
is quadratic with curvature h = −(1/s² + 1) and maximum m* = x / (s² h̃), h̃ = 1/s² + 1. Gradient
ascent with step α gives m_K − m* = (1 + α h)^K (m_0 − m*), so
dm_K/dm_0 = (1 + α h)^K and dm_K/dx = (1 − (1 + α h)^K) dm*/dx.
"""
import numpy as np
import pytest
import tensorflow as tf

from tflv.vi.semi_amortized import refine

NOISE, STEP, NUM_STEPS = 0.8, 0.2, 5
CURVATURE = 1.0 / NOISE ** 2 + 1.0


def _refined(m0, x):
    def objective(params, step):  # ELBO up to a constant in m: [B]
        (m,) = params
        return -0.5 * ((x - m) ** 2 / NOISE ** 2 + m ** 2)
    return refine(objective, [m0], NUM_STEPS, STEP)[0]


def test_refinement_and_its_gradient_match_the_closed_form():
    m0 = tf.constant([0.0, -1.0, 2.0], tf.float64)
    x = tf.constant([1.0, 0.5, -2.0], tf.float64)
    contraction = (1.0 - STEP * CURVATURE) ** NUM_STEPS
    m_star = x.numpy() / NOISE ** 2 / CURVATURE
    compiled = tf.function(_refined, input_signature=[tf.TensorSpec([None], tf.float64)] * 2)
    for fn in (_refined, compiled):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([m0, x])
            m_k = fn(m0, x)
        np.testing.assert_allclose(m_k, m_star + contraction * (m0.numpy() - m_star), rtol=1e-12)
        np.testing.assert_allclose(tape.gradient(m_k, m0), np.full(3, contraction), rtol=1e-12)
        np.testing.assert_allclose(tape.gradient(m_k, x),
                                   np.full(3, (1 - contraction) / NOISE ** 2 / CURVATURE),
                                   rtol=1e-12)


def test_clipping_bounds_each_examples_step_and_leaves_small_ones():
    # One linear step: the objective Σ_d a_bd λ_bd + c_b μ_b has gradient (a_b, c_b) in row b.
    a = tf.constant([[3.0, 4.0], [0.3, 0.4]], tf.float64)  # row norms with c: 13 and 1.3
    c = tf.constant([12.0, 1.2], tf.float64)
    objective = lambda params, k: (tf.reduce_sum(a * params[0], axis=1) + c * params[1])
    lam, mu = tf.zeros([2, 2], tf.float64), tf.zeros([2], tf.float64)
    new_lam, new_mu = refine(objective, [lam, mu], 1, 0.5, max_grad_norm=5.0)
    # Row 0 is scaled to norm 5 (by 5/13), jointly over both tensors; row 1 is left alone.
    np.testing.assert_allclose(new_lam, 0.5 * np.array([[3, 4], [0.3, 0.4]]) * [[5 / 13], [1]],
                               rtol=1e-12)
    np.testing.assert_allclose(new_mu, 0.5 * np.array([12 * 5 / 13, 1.2]), rtol=1e-12)
    step_norms = np.sqrt(np.sum(new_lam.numpy() ** 2, 1) + new_mu.numpy() ** 2)
    np.testing.assert_allclose(step_norms, [0.5 * 5.0, 0.5 * 1.3], rtol=1e-12)
    # Below the threshold the refinement and its closed-form derivatives are unchanged.
    m0 = tf.constant([0.0, -1.0], tf.float64)
    x = tf.constant([1.0, 0.5], tf.float64)
    quadratic = lambda params, k: -0.5 * ((x - params[0]) ** 2 / NOISE ** 2 + params[0] ** 2)
    np.testing.assert_array_equal(refine(quadratic, [m0], NUM_STEPS, STEP, max_grad_norm=1e3)[0],
                                  refine(quadratic, [m0], NUM_STEPS, STEP)[0])


def test_clipped_refinement_is_differentiable_where_a_gradient_vanishes():
    # Row 1's objective is flat at λ_0, so its gradient norm is 0 there.
    lam = tf.constant([[1.0, -2.0], [0.0, 0.0]], tf.float64)
    weights = tf.constant([[1.0], [0.0]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(lam)
        out = refine(lambda params, k: -tf.reduce_sum(weights * params[0] ** 2, axis=1), [lam],
                     2, 0.1, max_grad_norm=1.0)[0]
    grad = tape.gradient(out, lam).numpy()
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[1], [1.0, 1.0])  # row 1 never moves: dλ_K/dλ_0 = I


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="num_steps"):
        refine(lambda p, k: p[0], [tf.zeros([2])], -1, 0.1)
    with pytest.raises(ValueError, match="step_size"):
        refine(lambda p, k: p[0], [tf.zeros([2])], 1, 0.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        refine(lambda p, k: p[0], [tf.zeros([2])], 1, 0.1, max_grad_norm=0.0)
