"""The forward algorithm's hand-written backward pass against autodiff through the forward loop.

`_forward.forward` differentiates log Z and log α_t with a hand-written adjoint recursion
(`tf.custom_gradient`); the reference is TF's autodiff through `_forward._recursion`, the same
forward loop without the custom gradient, in float64. Both first-order gradients (upstream on
log Z and on the filtered log α_t, as pairwise marginals use them) and second-order ones
(the Hessian of log Z applied to θ, what the entropy's gradient needs) are compared, for
shared, per-row and per-step transitions, −inf potentials, masks (lengths 5, 3, 1) and
logits of ±400 (where the range rule picks the log semiring), eagerly, in a `tf.function` and
under XLA. Finite differences of the gradients are in test_chain_exactness.py.
"""
import numpy as np
import pytest
import tensorflow as tf

from tflv.distributions import _forward

T, B, K = 5, 3, 4
# (transitions, −inf potentials, mask, ±400 logits, semiring). The range rule (float64) sends ±400 logits
# and −inf transitions to the log semiring, so "auto" is the scaled one only on the others.
CASES = [("shared", False, False, False, "auto"), ("shared", False, False, False, "log"),
         ("per_row", True, False, True, "auto"), ("per_step", True, True, False, "auto"),
         ("per_step", False, False, True, "auto"), ("per_row", False, True, False, "auto"),
         ("per_row", False, True, False, "log"), ("shared", True, True, False, "log")]
COMPILED_CASES = [CASES[0], CASES[3]]  # the scaled and the log semiring, masks, −inf

def potentials(seed, transitions, minus_inf, masked, large):
    rng = np.random.default_rng(seed)
    scale = 400.0 if large else 1.0
    shapes = {"shared": (K, K), "per_row": (B, K, K), "per_step": (T - 1, B, K, K)}
    initial, emission = rng.normal(size=(B, K)) * scale, rng.normal(size=(T, B, K)) * scale
    transition = rng.normal(size=shapes[transitions]) * scale
    if minus_inf:  # state K-1 cannot be entered, 0 -> 1 is forbidden, and more
        transition[..., :, K - 1] = -np.inf
        transition[..., 0, 1] = -np.inf
        initial[:, 1] = -np.inf
        emission[1, :, 0] = -np.inf
    mask = (np.arange(T)[:, None] < np.array([T, 3, 1])[None, :]) if masked else None
    weights = rng.normal(size=B), rng.normal(size=(T, B, K))
    return [tf.constant(p) for p in (initial, transition, emission)], mask, weights


def reference(initial, transition, emission, mask, semiring):
    """forward()'s preprocessing, then the loop differentiated by autodiff."""
    per_step = transition.shape.rank == 4
    if mask is not None:
        emission = tf.where(mask[..., None], emission, tf.zeros_like(emission))
        if per_step:
            transition = tf.where(mask[1:, :, None, None], transition, tf.zeros_like(transition))
    return _forward._recursion(initial, [transition], [per_step], emission, mask, semiring)


def first_and_second_order(chain, args, weights, filtered_too=True):
    """L = Σ w·log Z + Σ w'·log α (finite entries; the second term only if filtered_too);
    returns L, ∂L/∂θ and ∂(Σ θ·∂L/∂θ)/∂θ."""
    with tf.GradientTape() as outer:
        outer.watch(args)
        with tf.GradientTape() as inner:
            inner.watch(args)
            result = chain(*args)
            filtered = tf.where(tf.math.is_finite(result.log_filtered), result.log_filtered, 0.0)
            loss = tf.reduce_sum(weights[0] * result.log_z)
            if filtered_too:
                loss += tf.reduce_sum(weights[1] * filtered)
        grads = inner.gradient(loss, args)
        directional = sum(tf.reduce_sum(tf.where(tf.math.is_finite(a), a, 0.0) * g)
                          for a, g in zip(args, grads))
    return [loss, *grads, *outer.gradient(directional, args)]


@pytest.mark.parametrize("mode,cases,filtered_too", [
    ("eager", CASES, True), ("graph", COMPILED_CASES, True), ("xla", COMPILED_CASES, True),
    ("eager", CASES, False),
    pytest.param("graph", COMPILED_CASES, False, marks=pytest.mark.slow),
    pytest.param("xla", COMPILED_CASES, False, marks=pytest.mark.slow)])
def test_backward_pass_matches_autodiff_through_the_loop(mode, cases, filtered_too):
    """filtered_too=False: log Z alone (log p, its gradient, the marginals), where autodiff's
    upstream gradient of log α_t is a constant zero and the backward pass drops that term."""
    for seed, (transitions, minus_inf, masked, large, semiring) in enumerate(cases):
        args, mask, weights = potentials(seed, transitions, minus_inf, masked, large)
        mask = None if mask is None else tf.constant(mask)
        scaled = semiring == "auto" and not (large or minus_inf)
        want = first_and_second_order(
            lambda *a: reference(*a, mask, "scaled" if scaled else "log"), args, weights,
            filtered_too)

        def run(*args):
            return first_and_second_order(
                lambda *a: _forward.forward(a[0], [a[1]], a[2], mask, semiring), args, weights,
                filtered_too)

        if mode != "eager":
            run = tf.function(run, jit_compile=mode == "xla")
        got = run(*args)
        for name, g, w in zip(["L", "dθ0", "dθ", "dφ", "Hθ0", "Hθ", "Hφ"], got, want):
            assert np.all(np.isfinite(g)), (name, g)
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10, err_msg=(
                f"{name}: {transitions} transitions, −inf {minus_inf}, mask {masked}, "
                f"±400 {large}, {semiring}"))


def test_float32_gradients_are_those_of_float64():
    """The scaled backward pass in float32 on a long chain (T = 400) against float64."""
    rng = np.random.default_rng(7)
    t, b, k = 400, 2, 8
    values = [rng.normal(size=(b, k)), rng.normal(size=(k, k)), 3 * rng.normal(size=(t, b, k))]
    grads = {}
    for dtype in (tf.float32, tf.float64):
        args = [tf.constant(v, dtype) for v in values]
        with tf.GradientTape() as tape:
            tape.watch(args)
            log_z = _forward.forward(args[0], [args[1]], args[2]).log_z
        grads[dtype] = tape.gradient(log_z, args)
    for g32, g64 in zip(grads[tf.float32], grads[tf.float64]):
        np.testing.assert_allclose(g32, g64, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_emission_lookup_gradient_matches_autodiff(mode):
    """hmm._log_softmax_columns (log softmax of [K, V] logits read at the tokens, hand-written
    gradient) against autodiff through tf.nn.log_softmax and tf.gather, float64: values, first
    and second order, with repeated tokens, a token no state emits and a −inf logit."""
    from tflv.distributions.hmm import _log_softmax_columns

    rng = np.random.default_rng(3)
    k, v, b, t = 4, 9, 3, 5
    logits = rng.normal(size=(k, v)) * 3
    logits[1, 2] = -np.inf  # state 1 cannot emit token 2
    logits[:, 8] = -np.inf  # token 8: no state emits it
    tokens = rng.integers(0, 8, size=(b, t))
    tokens[0, :3] = 2
    weights = tf.constant(rng.normal(size=(t, b, k)))
    tokens, logits = tf.constant(tokens), tf.constant(logits)

    def reference(logits):
        return tf.transpose(tf.gather(tf.nn.log_softmax(logits), tf.transpose(tokens), axis=1),
                            [1, 2, 0])

    def derivatives(lookup, logits):
        with tf.GradientTape() as outer:
            outer.watch(logits)
            with tf.GradientTape() as inner:
                inner.watch(logits)
                scores = lookup(logits)
                loss = tf.reduce_sum(tf.where(tf.math.is_finite(scores), scores, 0.0) * weights)
            grad = inner.gradient(loss, logits)
            curvature = tf.reduce_sum(tf.sin(grad))
        return scores, grad, outer.gradient(curvature, logits)

    want = derivatives(reference, logits)
    run = derivatives if mode == "eager" else tf.function(derivatives, jit_compile=True)
    got = run(lambda l: _log_softmax_columns(l, tokens), logits)
    for name, g, w in zip(["scores", "gradient", "second order"], got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=name)
