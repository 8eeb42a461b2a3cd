"""The forward algorithm over a linear chain: one recursion, three semirings.

A chain of T positions over S states scores a path z_{1:T} by

    score(z) = θ_0[z_1] + Σ_{t=2..T} θ_t[z_{t-1}, z_t] + Σ_{t=1..T} φ_t[z_t]

with initial, transition and emission log-potentials θ_0 [S], θ_t [S, S], φ_t [S]. For a
semiring (⊕, ⊗) the forward recursion is

    α_1 = θ_0 ⊗ φ_1,    α_t[j] = (⊕_i α_{t-1}[i] ⊗ θ_t[i, j]) ⊗ φ_t[j],    A = ⊕_j α_T[j],

which gives log Z = log Σ_z exp score(z) in the sum semiring and max_z score(z) (the Viterbi
score) in the max semiring. `semiring=` picks one of:

* `"auto"` (and its synonym `"scaled"`): the sum semiring in probability space (Rabiner
  1989) when every row of the batch passes the range rule below, else the log semiring for
  the whole batch. Potentials are exponentiated once, after subtracting their maximum (per
  emission position and per transition matrix); each step is one matmul α_{t-1} @ exp θ_t, and
  α_t is rescaled to sum to one. log Z is the sum of the logs of the scales and of the
  subtracted maxima. The rule is checked once per call (a few reductions over the
  potentials) and the choice is a `tf.cond` on that scalar inside each step of a single loop,
  so one recursion runs, it compiles under XLA, and it can be differentiated twice.
* `"log"`: the sum semiring in log space (logsumexp), O(S²) elementwise work per step.
* `"max"`: the max-plus semiring (Viterbi).

The range rule of the scaled semiring. Let R_t be the spread (max − min over its finite
entries) of the emission potentials φ_t plus, summed over the Kronecker factors, the spread
of each transition matrix θ_t (of θ_0 at t = 1). After the shifts, exp θ_t ∈ [e^-R, 1]; α_{t-1}
sums to one, so its largest entry is ≥ 1/S, and every reachable entry of α_t is at least
e^{-R_t} / S², while the entries it drops by underflow add at most S·tiny. The scaled pass is
therefore exact to the dtype's precision ε when

    max_t R_t + 2 log S + log(1/ε) ≤ log(1/tiny)

(tiny the smallest normal number: R_t ≤ ~71 − 2 log S nats in float32, ~672 − 2 log S in
float64), and when no transition potential is −inf (a forbidden move can make the largest
α_{t-1} lead nowhere, and the bound fails). −inf emission and initial potentials are exact
zeros and are allowed. A row that breaks the rule is not necessarily wrong in the scaled
semiring, but it is not guaranteed: its batch is computed in log space instead.

−inf potentials are exact in every semiring: an unreachable state has α = 0 and zero
marginals (the log semiring's logsumexp has a zero, not NaN, gradient on an all −inf slice),
and a row whose probability is 0 (a token no state can emit, a path made impossible by the
transitions) has log Z = −inf, zero marginals and zero gradients.

Lengths: T = 0 and T = 1 work, also with T unknown when the graph is built (`tf.function`):
the recursion always runs over at least two positions, the missing ones masked. A row of
length 0 has log Z = 0 (the empty path) and zero marginals.

In every semiring α_t is renormalised at each step (⊕_j α_t[j] = 1) and the normaliser is
accumulated, so the stacked α_t are the filtered distributions p(z_t | x_{≤t}) (sum) or the
normalised Viterbi scores (max) that `_backtrack.backtrack` uses.

Posterior marginals are gradients of log Z (Eisner 2016): ∂ log Z / ∂ φ_t[k] = p(z_t = k | x),
∂ log Z / ∂ θ_t[i, j] = p(z_{t-1} = i, z_t = j | x); `log_partition_gradients` takes them.

The backward pass is written by hand (`tf.custom_gradient`, one transition factor): the
reverse of the forward recursion, in the same semiring as the forward pass. With
u_t = (α_{t-1} exp θ_t) ⊙ exp φ_t, c_t = Σ u_t, α_t = u_t / c_t (position 1: u_1 = exp θ_0 ⊙ exp φ_1),
m_t the mask and upstream gradients ḡ = ∂L/∂ log Z [B] and ∂L/∂ log α_t, the adjoint
g_t = ∂L/∂α_t runs backwards from g_T = (∂L/∂ log α_T) / α_T:

    b_t = g_t − ⟨g_t, α_t⟩ + m_t ḡ,    v_t = b_t ⊙ exp φ_t / c_t,
    g_{t-1} = v_t (exp θ_t)ᵀ + (∂L/∂ log α_{t-1}) / α_{t-1},

    ∂L/∂φ_t = b_t ⊙ α_t,   ∂L/∂θ_0 = b_1 ⊙ α_1,   ∂L/∂θ_t = exp θ_t ⊙ (α_{t-1} v_tᵀ)

(summed over rows and steps for shared transitions: one contraction after the loop). For
log Z alone, g_t is Rabiner's scaled backward variable β_t and ∂ log Z / ∂ φ_t = α_t ⊙ β_t.
One matmul per step, as forward. In the log semiring the same recursion runs on
h_t = g_t ⊙ α_t (a signed adjoint, so not in log space) through the backward conditionals
P_t[i, j] = p(z_{t-1} = i | z_t = j, x_{≤t}) = softmax_i(log α_{t-1}[i] + θ_t[i, j]):
q_t = h_t − α_t (Σ h_t − m_t ḡ), h_{t-1} = P_t q_t + ∂L/∂ log α_{t-1}, ∂L/∂φ_t = q_t,
∂L/∂θ_t[i, j] = P_t[i, j] q_t[j]. A step with c_t = 0 (no reachable state) has no
normaliser term; rows of probability 0 get zero gradients. The backward pass is ordinary TF,
so autodiff through it gives second-order gradients (the entropy's, `HMM.posterior_entropy`),
also under XLA. With several Kronecker factors the forward loop is differentiated by autodiff.

Transitions may be a Kronecker product of L factors on a product state space
S = K_1 × … × K_L, θ_t[(i_1..i_L), (j_1..j_L)] = Σ_l θ^l_t[i_l, j_l] (the factorial HMM of
Ghahramani & Jordan 1997); the contraction is then applied one factor at a time, O(S Σ_l K_l)
per step instead of O(S²).

Masks: log Z sums the normalisers of real steps only (a masked sum after the recursion, so
the loop itself carries no select). Padded positions get zero emission potentials (and zero
per-step transitions), so the recursion runs on through them on finite values that reach
nothing real: a padded row gives exactly the log Z and gradients of its unpadded prefix (a row
of length 0 gives log Z = 0 and zero gradients). α_t at a padded t is the prediction
p(z_t | x_{<L}) of a row of length L, not a filtered distribution; `_backtrack` reads the last
real α of each row, never a padded one.

All tensors are time-major: emissions φ [T, B, S], masks [T, B].

#### References

Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in speech
recognition. Proceedings of the IEEE 77(2).

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Ghahramani, Z. & Jordan, M. I. (1997). Factorial hidden Markov models. Machine Learning 29.

Rush, A. M. (2020). Torch-Struct: Deep structured prediction library. ACL demo track.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

SEMIRINGS = ("auto", "scaled", "log", "max")
SUM_SEMIRINGS = ("auto", "scaled", "log")


class ForwardResult(NamedTuple):
    """log_z: [B] (log Z, or the Viterbi score for "max"); log_filtered: [T, B, S] log α_t."""

    log_z: tf.Tensor
    log_filtered: tf.Tensor


def check_semiring(semiring: str, allowed: Sequence[str] = SEMIRINGS) -> str:
    if semiring not in allowed:
        raise ValueError(f"semiring must be one of {tuple(allowed)}, got {semiring!r}")
    return semiring


def _finite_or_zero(t: tf.Tensor) -> tf.Tensor:
    return tf.where(tf.math.is_finite(t), t, tf.zeros_like(t))


def logsumexp(x: tf.Tensor, axis, keepdims: bool = False) -> tf.Tensor:
    """log Σ exp x over `axis`; −inf on an all −inf slice, with a zero gradient there.

    `tf.reduce_logsumexp` has the right value on such a slice but a NaN gradient (0 / 0), which
    one unreachable state (a −inf potential) would spread to every marginal of the chain.
    """
    shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(x, axis, keepdims=True)))
    total = tf.reduce_sum(tf.exp(x - shift), axis, keepdims=True)
    positive = total > 0
    out = tf.where(positive, tf.math.log(tf.where(positive, total, tf.ones_like(total))) + shift,
                   tf.fill(tf.shape(total), tf.constant(-np.inf, x.dtype)))
    return out if keepdims else tf.squeeze(out, axis)


def _normalize(alpha: tf.Tensor, semiring: str) -> tuple[tf.Tensor, tf.Tensor]:
    """alpha: [B, S] -> (alpha rescaled so that ⊕ alpha = 1, log of the scale [B]).

    A row with ⊕ alpha = 0 (no reachable state) stays 0 (−inf in log space) and has scale −inf.
    """
    if semiring == "scaled":
        total = tf.reduce_sum(alpha, axis=-1, keepdims=True)
        positive = total > 0
        safe = tf.where(positive, total, tf.ones_like(total))
        log_total = tf.where(positive, tf.math.log(safe),
                             tf.fill(tf.shape(total), tf.constant(-np.inf, alpha.dtype)))
        return alpha / safe, log_total[:, 0]
    norm = (logsumexp(alpha, -1, keepdims=True) if semiring == "log"
            else tf.reduce_max(alpha, axis=-1, keepdims=True))
    return alpha - _finite_or_zero(norm), norm[:, 0]


def _contract(alpha: tf.Tensor, factor: tf.Tensor, outer: int, inner: int,
              semiring: str) -> tf.Tensor:
    """Applies one transition factor along one axis of the product state.

    alpha: [B, S] viewed as [B, outer, K, inner]; factor: [K, K] (shared) or [B, K, K] (per
    row), already exponentiated for "scaled". Returns [B, S].
    """
    batched = factor.shape.rank == 3
    if outer == 1 and inner == 1:
        view = alpha
    else:
        view = tf.reshape(alpha, [tf.shape(alpha)[0], outer, -1, inner])
    if semiring == "scaled":
        if inner == 1:
            if batched:  # [B, outer, K] @ [B, K, K]
                out = tf.matmul(tf.reshape(view, [tf.shape(alpha)[0], outer, -1]), factor)
            else:  # [B * outer, K] @ [K, K]
                out = tf.matmul(tf.reshape(view, [-1, tf.shape(factor)[0]]), factor)
        else:
            out = tf.einsum("bokq,bkj->bojq" if batched else "bokq,kj->bojq", view, factor)
    else:
        view = tf.reshape(view, [tf.shape(alpha)[0], outer, -1, 1, inner])
        edges = factor[:, None, :, :, None] if batched else factor[None, None, :, :, None]
        out = (logsumexp(view + edges, axis=2) if semiring == "log"
               else tf.reduce_max(view + edges, axis=2))  # [B, outer, K, inner]
    return tf.reshape(out, tf.shape(alpha))


def at_least_two_steps(emissions: tf.Tensor, mask: tf.Tensor | None,
                       per_step: Sequence[tf.Tensor] = ()):
    """Pads the time axis to T' = max(T, 2) with masked positions.

    The recursions scan over T' − 1 steps; a scan over none fails in a graph whose T is
    unknown ("Tried to stack elements of an empty list"), and position 0 must exist. Nothing
    is added when T ≥ 2 is static.

    Args:
      emissions: [T, B, ...]; mask: bool [T, B] or None; per_step: tensors [T-1 (or fewer), B,
        ...] padded with zeros to T' − 1 steps.

    Returns:
      (emissions [T', B, ...], mask [T', B] or None if unpadded, per_step list, T scalar).
    """
    steps = emissions.shape[0]
    if steps is not None and steps >= 2:
        return emissions, mask, list(per_step), steps
    steps = tf.shape(emissions)[0]
    extra = tf.maximum(2 - steps, 0)
    if mask is None:
        mask = tf.ones(tf.shape(emissions)[:2], tf.bool)

    def pad(t, amount):
        return tf.pad(t, tf.concat([[[0, amount]], tf.zeros([t.shape.rank - 1, 2], tf.int32)], 0))

    padded = [pad(f, tf.maximum(steps + extra - 1 - tf.shape(f)[0], 0)) for f in per_step]
    return pad(emissions, extra), pad(mask, extra), padded, steps


def scaled_is_exact(initial: tf.Tensor, transitions: Sequence[tf.Tensor],
                    emissions: tf.Tensor) -> tf.Tensor:
    """bool [B]: whether the scaled semiring is exact on each row (the range rule, module
    docstring). Arguments as `forward` (padding already zeroed); −inf emissions and initial
    potentials allowed, any non-finite transition potential (or NaN, +inf anywhere) fails."""
    dtype = emissions.dtype.as_numpy_dtype
    info = np.finfo(dtype)
    num_states = emissions.shape[-1] or tf.cast(tf.shape(emissions)[-1], emissions.dtype)
    budget = (math.log(1 / info.tiny) - math.log(1 / info.eps)
              - 2 * tf.math.log(tf.cast(num_states, emissions.dtype)))

    def spread(t, axes, allow_minus_inf):  # max − min over the finite entries (0 if none)
        high = tf.reduce_max(t, axes)
        if allow_minus_inf:
            low = tf.reduce_min(tf.where(tf.equal(t, -np.inf), tf.fill(tf.shape(t), dtype(np.inf)),
                                         t), axes)
            return tf.where(tf.equal(high, -np.inf), tf.zeros_like(high), high - low)
        return high - tf.reduce_min(t, axes)  # inf (or NaN) on a non-finite entry

    spreads = spread(emissions, -1, True)  # [T, B]
    steps = tf.zeros_like(spreads[1:])
    for f in transitions:
        f_spread = spread(f, [-2, -1], False)  # [], [B] or [T-1, B]
        steps += f_spread if f.shape.rank == 4 else tf.broadcast_to(f_spread, tf.shape(steps))
    spreads += tf.concat([spread(initial, -1, True)[None], steps], axis=0)
    ok = spreads <= budget  # False on NaN
    return tf.reduce_all(ok, axis=0)


def _select(scaled, scaled_fn, log_fn):
    """scaled_fn() or log_fn(): a Python branch for a Python bool, else a `tf.cond`."""
    if isinstance(scaled, bool):
        return scaled_fn() if scaled else log_fn()
    return tf.cond(scaled, scaled_fn, log_fn)


def _step_potentials(initial: tf.Tensor, transitions: list, emissions: tf.Tensor,
                     scaled: bool):
    """The potentials one recursion multiplies: exp(θ − max θ) and the subtracted maxima
    (offsets [T, B], summed into log Z at each real step) for "scaled"; θ itself and zero
    offsets for the log and max semirings."""
    if not scaled:
        return initial, list(transitions), emissions, tf.zeros_like(emissions[..., 0])
    shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(emissions, axis=-1)))  # [T, B]
    offsets = shift
    factors = []
    for f in transitions:
        f_shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(f, axis=[-2, -1])))
        factors.append(tf.exp(f - f_shift[..., None, None]))
        step_offset = f_shift if f.shape.rank == 4 else tf.broadcast_to(f_shift,
                                                                        tf.shape(offsets[1:]))
        offsets += tf.pad(step_offset, [[1, 0], [0, 0]])
    init_shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(initial, axis=-1)))  # [B]
    offsets += tf.pad(init_shift[None], [[0, tf.shape(offsets)[0] - 1], [0, 0]])
    return (tf.exp(initial - init_shift[:, None]), factors,
            tf.exp(emissions - shift[..., None]), offsets)


def _safe_log(p: tf.Tensor) -> tf.Tensor:
    """log p, −inf (with a zero, not NaN, gradient) where p = 0."""
    positive = p > 0
    return tf.where(positive, tf.math.log(tf.where(positive, p, tf.ones_like(p))),
                    tf.fill(tf.shape(p), tf.constant(-np.inf, p.dtype)))


class _Pass(NamedTuple):
    """What a sum-semiring forward pass keeps for its backward pass (time-major)."""

    log_z: tf.Tensor  # [B]
    log_filtered: tf.Tensor  # [T, B, S]
    alphas: tf.Tensor  # [T, B, S] α_t (probabilities for "scaled", log α_t otherwise)
    log_norms: tf.Tensor  # [T, B] log of each step's normaliser c_t (−inf if c_t = 0)
    potentials: tuple  # (initial, factors, emissions) as the recursion multiplied them


def _recursion(initial: tf.Tensor, transitions: list, per_step: list, emissions: tf.Tensor,
               mask: tf.Tensor | None, semiring: str, scaled=None) -> ForwardResult:
    """The forward recursion, T ≥ 2, padding already zeroed, differentiated by autodiff.

    semiring: "scaled", "log" or "max"; or "sum" with `scaled` a bool tensor [] choosing the
    scaled or the log semiring (a `tf.cond` in each step, so one loop serves both).
    """
    result = _forward_pass(initial, transitions, per_step, emissions, mask, semiring, scaled)
    return ForwardResult(result.log_z, result.log_filtered)


def _forward_pass(initial, transitions, per_step, emissions, mask, semiring, scaled=None
                  ) -> _Pass:
    if semiring != "sum":
        scaled = semiring == "scaled"
    kind = lambda is_scaled: "scaled" if is_scaled else ("log" if semiring != "max" else "max")
    sizes = [f.shape[-1] for f in transitions]
    initial, transitions, emissions, offsets = _select(
        scaled, lambda: _step_potentials(initial, transitions, emissions, True),
        lambda: _step_potentials(initial, transitions, emissions, False))
    alpha, log_z = _select(scaled,
                           lambda: _normalize(initial * emissions[0], "scaled"),
                           lambda: _normalize(initial + emissions[0], kind(False)))

    outers = [math.prod(sizes[:l]) for l in range(len(sizes))]
    inners = [math.prod(sizes[l + 1:]) for l in range(len(sizes))]

    def step(alpha, emission, factors, is_scaled):  # α_{t-1} [B, S], φ_t [B, S], θ_t
        new = alpha
        for f, outer, inner in zip(factors, outers, inners):
            new = _contract(new, f, outer, inner, kind(is_scaled))
        new = new * emission if is_scaled else new + emission
        return _normalize(new, kind(is_scaled))  # ([B, S], log of the scale [B])

    def body(carry, elems):
        emission, step_factors = elems
        step_factors = iter(step_factors)
        factors = [next(step_factors) if is_step else f
                   for f, is_step in zip(transitions, per_step)]
        return _select(scaled, lambda: step(carry[0], emission, factors, True),
                       lambda: step(carry[0], emission, factors, False))

    alphas, log_norms = tf.scan(
        body, (emissions[1:], tuple(f for f, is_step in zip(transitions, per_step) if is_step)),
        initializer=(alpha, tf.zeros_like(log_z)))  # [T-1, B, S], [T-1, B]
    log_norms = tf.concat([log_z[None], log_norms], axis=0)  # [T, B]
    counted = log_norms + offsets
    if mask is not None:  # a row of length 0 has log Z = 0 (the empty path)
        counted = tf.where(mask, counted, tf.zeros_like(counted))
    log_z = tf.reduce_sum(counted, axis=0)
    # A row of probability 0 has log Z = −inf and no gradient (its earlier, finite normalisers
    # would otherwise give it marginals).
    impossible = tf.equal(log_z, -np.inf)
    log_z = tf.where(impossible, tf.fill(tf.shape(log_z), tf.constant(-np.inf, log_z.dtype)),
                     log_z)
    alphas = tf.concat([alpha[None], alphas], axis=0)  # [T, B, S]
    log_filtered = _select(scaled, lambda: _safe_log(alphas), lambda: alphas)
    return _Pass(log_z, log_filtered, alphas, log_norms, (initial, transitions, emissions))


def _with_backward_pass(initial: tf.Tensor, factor: tf.Tensor, emissions: tf.Tensor,
                        mask: tf.Tensor | None, scaled) -> ForwardResult:
    """The sum-semiring forward pass of one transition factor, with a hand-written backward
    pass (the module docstring's adjoint recursion) as its gradient. Autodiff through that
    backward pass gives second-order gradients (posterior_entropy's)."""
    per_step = factor.shape.rank == 4

    @tf.custom_gradient
    def chain(initial, factor, emissions):
        fwd = _forward_pass(initial, [factor], [per_step], emissions, mask, "sum", scaled)

        def grad(d_log_z, d_log_filtered):
            return _backward_pass(fwd, factor, mask, scaled, d_log_z, d_log_filtered)

        return (fwd.log_z, fwd.log_filtered), grad

    return ForwardResult(*chain(initial, factor, emissions))


def _is_zero(t: tf.Tensor) -> bool:
    """Whether t is known, without running anything, to be all zeros: the upstream gradient
    autodiff passes for an output that nothing used (a constant in a graph, a tensor in eager)."""
    value = tf.get_static_value(t)
    return value is not None and not np.any(value)


def _backward_pass(fwd: _Pass, factor: tf.Tensor, mask, scaled, d_log_z, d_log_filtered):
    """The vector-Jacobian product of `_forward_pass` (one factor) for upstream gradients
    d_log_z [B] and d_log_filtered [T, B, S]: gradients w.r.t. (initial, factor, emissions)."""
    alphas, log_norms = fwd.alphas, fwd.log_norms
    init_pot, (factor_pot,), emission_pot = fwd.potentials
    dtype = alphas.dtype
    d_log_z = tf.zeros_like(fwd.log_z) if d_log_z is None else d_log_z
    if d_log_filtered is not None and _is_zero(d_log_filtered):
        d_log_filtered = None  # log Z alone (log p, its gradient, marginals): no direct term
    # Rows of probability 0 get no gradient; nor do log α_t = −inf entries.
    d_log_z = tf.where(tf.equal(fwd.log_z, -np.inf), tf.zeros_like(d_log_z), d_log_z)
    counted = tf.cast(log_norms > -np.inf, dtype)  # [T, B] c_t > 0
    if mask is not None:
        pushed = counted * tf.cast(mask, dtype) * d_log_z  # ∂L/∂ log c_t
    else:
        pushed = counted * d_log_z
    probs = _select(scaled, lambda: alphas, lambda: tf.exp(alphas))  # α_t [T, B, S]
    # The carried adjoint: w.r.t. α_t for "scaled" (d log α / α), w.r.t. log α_t for "log".
    direct = None
    if d_log_filtered is not None:
        live = alphas > _select(scaled, lambda: tf.constant(0, dtype),
                                lambda: tf.constant(-np.inf, dtype))  # log α_t > −inf
        d_filtered = tf.where(live, d_log_filtered, tf.zeros_like(d_log_filtered))
        direct = _select(scaled, lambda: tf.where(live, d_filtered / tf.where(
            live, probs, tf.ones_like(probs)), tf.zeros_like(probs)), lambda: d_filtered)
    safe_norms = tf.exp(tf.where(counted > 0, log_norms, tf.zeros_like(log_norms)))  # c_t or 1
    shared = factor.shape.rank < 4
    k = factor.shape[-1] or tf.shape(factor)[-1]
    # A plain matmul by a transposed copy is faster than a transpose_b matmul in each step
    # (XLA:CPU, K = 256: 1.5× per step).
    factor_t = tf.linalg.matrix_transpose(factor_pot) if shared else None

    def log_weights(prev_log, step_factor):
        """P[b, i, j] = p(z_{t-1} = i | z_t = j, x_{≤t}) from log α_{t-1} and θ_t."""
        scores = prev_log[:, :, None] + (step_factor if step_factor.shape.rank == 3
                                         else step_factor[None])
        column = _finite_or_zero(logsumexp(scores, axis=1, keepdims=True))
        return tf.exp(scores - column)

    def step_grads(h, t, acc, is_scaled):
        """From the adjoint h of α_t (t ≥ 1): (q_t, adjoint of α_{t-1}, v_t, θ_t's gradient)."""
        alpha, prev, p = alphas[t], alphas[t - 1], probs[t]
        step_factor = factor_pot[t - 1] if not shared else factor_pot
        if is_scaled:
            b = h - counted[t][:, None] * tf.reduce_sum(h * alpha, -1, keepdims=True) \
                + pushed[t][:, None]
            q = b * alpha
            v = b * emission_pot[t] / safe_norms[t][:, None]
            if shared:  # v_t (exp θ)ᵀ with the transpose made once, before the loop
                back = (tf.matmul(v, factor_t) if factor_t.shape.rank == 2
                        else tf.matmul(v[:, None, :], factor_t)[:, 0])
            else:
                back = tf.matmul(v[:, None, :], step_factor, transpose_b=True)[:, 0]
            return q, back, v, (step_factor * prev[:, :, None] * v[:, None, :] if not shared
                                else acc)
        q = h - p * (counted[t][:, None] * tf.reduce_sum(h, -1, keepdims=True)
                     - pushed[t][:, None])
        weights = log_weights(prev, step_factor)  # [B, K, K]
        back = tf.einsum("bij,bj->bi", weights, q)
        flow = weights * q[:, None, :]
        if not shared:
            return q, back, tf.zeros_like(q), flow
        return q, back, tf.zeros_like(q), acc + (flow if factor.shape.rank == 3
                                                   else tf.reduce_sum(flow, 0))

    steps = tf.shape(alphas)[0]
    acc0 = tf.zeros_like(factor) if shared else tf.zeros([0], dtype)
    q_array = tf.TensorArray(dtype, size=steps, element_shape=alphas.shape[1:])
    v_array = tf.TensorArray(dtype, size=steps, element_shape=alphas.shape[1:])
    g_array = (None if shared else
               tf.TensorArray(dtype, size=steps - 1, element_shape=factor.shape[1:]))

    def body(t, h, acc, qs, vs, *gs):
        def run(is_scaled):
            q, back, v, g = step_grads(h, t, acc, is_scaled)
            return q, back if direct is None else back + direct[t - 1], v, g
        q, h_prev, v, g = _select(scaled, lambda: run(True), lambda: run(False))
        qs, vs = qs.write(t, q), vs.write(t - 1, v)
        if shared:
            return (t - 1, h_prev, g, qs, vs)
        return (t - 1, h_prev, acc, qs, vs, gs[0].write(t - 1, g))

    h_last = tf.zeros_like(alphas[-1]) if direct is None else direct[-1]
    loop_vars = (steps - 1, h_last, acc0, q_array, v_array) + (
        () if shared else (g_array,))
    t, h, acc, q_array, v_array, *g_arrays = tf.while_loop(
        lambda t, *_: t > 0, body, loop_vars, maximum_iterations=steps - 1)
    # Position 1: α_1 ∝ θ_0 ⊗ φ_1, so ∂L/∂θ_0 = ∂L/∂φ_1 = q_1.
    p1 = probs[0]
    h_scale = _select(scaled, lambda: alphas[0], lambda: tf.ones_like(p1))
    q1 = h * h_scale - p1 * (counted[0][:, None] * tf.reduce_sum(h * h_scale, -1, keepdims=True)
                             - pushed[0][:, None])
    q_array = q_array.write(0, q1)
    # flows[t] = v_{t+1} (zero at t = T-1), aligned with alphas[t] = α_t: the contraction
    # Σ_t α_{t-1}ᵀ v_t then runs on whole tensors, not on copies of slices.
    v_array = v_array.write(steps - 1, tf.zeros_like(q1))
    d_emissions, flows = q_array.stack(), v_array.stack()
    if shared:
        d_factor = _select(
            scaled, lambda: factor_pot * tf.einsum(
                "tbi,tbj->bij" if factor.shape.rank == 3 else "tbi,tbj->ij", alphas, flows),
            lambda: acc)
    else:
        d_factor = g_arrays[0].stack()
    return q1, d_factor, d_emissions


def forward(initial: tf.Tensor, transitions: Sequence[tf.Tensor], emissions: tf.Tensor,
            mask: tf.Tensor | None = None, semiring: str = "auto") -> ForwardResult:
    """Runs the forward recursion (module docstring) over a batch of chains.

    Args:
      initial: [B, S] initial log-potentials θ_0.
      transitions: L Kronecker factors with Π_l K_l = S, each [K_l, K_l] (shared by all rows
        and steps), [B, K_l, K_l] (per row) or [T-1, B, K_l, K_l] (per step, time-major; entry
        t-1 scores z_{t-1} -> z_t). With L > 1 every K_l must be static.
      emissions: [T, B, S] emission log-potentials φ_t (time-major), T ≥ 0.
      mask: bool [T, B], true for real positions (a prefix per row), or None.
      semiring: "auto", "scaled", "log" or "max".

    Returns:
      ForwardResult(log_z [B], log_filtered [T, B, S]).
    """
    check_semiring(semiring)
    transitions = list(transitions)
    sizes = [f.shape[-1] for f in transitions]
    if len(transitions) > 1 and any(k is None for k in sizes):
        raise ValueError(f"Kronecker transition factors need static sizes, got {sizes}")
    per_step = [f.shape.rank == 4 for f in transitions]
    emissions, mask, padded, steps = at_least_two_steps(
        emissions, mask, [f for f, is_step in zip(transitions, per_step) if is_step])
    padded = iter(padded)
    transitions = [next(padded) if is_step else f for f, is_step in zip(transitions, per_step)]
    if mask is not None:
        # Padding must not produce inf/nan that a tf.where gradient would turn into nan.
        emissions = tf.where(mask[..., None], emissions, tf.zeros_like(emissions))
        transitions = [tf.where(mask[1:, :, None, None], f, tf.zeros_like(f)) if is_step else f
                       for f, is_step in zip(transitions, per_step)]

    if semiring == "max":
        result = _recursion(initial, transitions, per_step, emissions, mask, "max")
    else:
        # One range check per call picks the semiring of the whole batch (module docstring).
        scaled = False if semiring == "log" else tf.reduce_all(
            scaled_is_exact(initial, transitions, emissions))
        if tf.executing_eagerly():
            scaled = bool(scaled)
        if len(transitions) == 1:
            result = _with_backward_pass(initial, transitions[0], emissions, mask, scaled)
        else:
            result = _recursion(initial, transitions, per_step, emissions, mask, "sum", scaled)
    return ForwardResult(result.log_z, result.log_filtered[:steps])


def log_partition_gradients(initial: tf.Tensor, transitions: Sequence[tf.Tensor],
                            emissions: tf.Tensor, mask: tf.Tensor | None = None,
                            semiring: str = "auto", wrt: Sequence[str] = ("emissions",)
                            ) -> tuple[ForwardResult, dict]:
    """The forward pass and the gradients of log Z w.r.t. the potentials named in `wrt`.

    Rows are independent, so ∂ Σ_b log Z_b / ∂ θ is, for per-row potentials, each row's
    posterior marginal (Eisner 2016); for potentials shared by rows it is the sum over rows.

    Args: as `forward`; wrt: any of "initial", "transitions", "emissions".
    Returns: (ForwardResult, {name: gradient shaped like that argument}).
    """
    sources = {"initial": initial, "transitions": list(transitions), "emissions": emissions}
    unknown = set(wrt) - set(sources)
    if unknown:
        raise ValueError(f"wrt names unknown potentials {sorted(unknown)}")
    wanted = {name: sources[name] for name in wrt}
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(tf.nest.flatten(wanted))
        result = forward(initial, sources["transitions"], emissions, mask, semiring)
    grads = tape.gradient(result.log_z, wanted,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return result, grads
