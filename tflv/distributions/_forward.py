"""The forward algorithm over a linear chain: one recursion, three semirings.

A chain of T positions over S states scores a path z_{1:T} by

    score(z) = θ_0[z_1] + Σ_{t=2..T} θ_t[z_{t-1}, z_t] + Σ_{t=1..T} φ_t[z_t]

with initial, transition and emission log-potentials θ_0 [S], θ_t [S, S], φ_t [S]. For a
semiring (⊕, ⊗) the forward recursion is

    α_1 = θ_0 ⊗ φ_1,    α_t[j] = (⊕_i α_{t-1}[i] ⊗ θ_t[i, j]) ⊗ φ_t[j],    A = ⊕_j α_T[j],

which gives log Z = log Σ_z exp score(z) in the sum semiring and max_z score(z) (the Viterbi
score) in the max semiring. `semiring=` picks one of:

* `"scaled"`: the sum semiring in probability space (Rabiner 1989). Potentials are
  exponentiated once, after subtracting their maximum (per emission position and per
  transition matrix); each step is one matmul α_{t-1} @ exp θ_t, and α_t is rescaled to sum
  to one. log Z is the sum of the logs of the scales and of the subtracted maxima. Rows on
  which this could lose range (the rule below) are recomputed in the log semiring, so the
  result is exact on every row; when any row is, both passes run.
* `"log"`: the sum semiring in log space (logsumexp), O(S²) elementwise work per step.
* `"auto"`: the scaled pass when every row of the batch passes the rule below, else the log
  pass for the whole batch (one pass either way; a `tf.cond`, so it works under XLA).
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
semiring, but it is not guaranteed: it is computed in log space instead.

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
∂ log Z / ∂ θ_t[i, j] = p(z_{t-1} = i, z_t = j | x); `log_partition_gradients` takes them with
autodiff, so no backward pass is written by hand.

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


def _recursion(initial: tf.Tensor, transitions: list, per_step: list, emissions: tf.Tensor,
               mask: tf.Tensor | None, semiring: str) -> ForwardResult:
    """The forward recursion in one semiring ("scaled", "log" or "max"), T ≥ 2, padding
    already zeroed."""
    sizes = [f.shape[-1] for f in transitions]
    if semiring == "scaled":
        shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(emissions, axis=-1)))  # [T, B]
        emissions = tf.exp(emissions - shift[..., None])
        offsets = shift  # [T, B], added to log Z at each real step
        scaled = []
        for f in transitions:
            f_shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(f, axis=[-2, -1])))
            scaled.append(tf.exp(f - f_shift[..., None, None]))
            step_offset = f_shift if f.shape.rank == 4 else tf.broadcast_to(
                f_shift, tf.shape(offsets[1:]))
            offsets += tf.pad(step_offset, [[1, 0], [0, 0]])
        transitions = scaled
        init_shift = tf.stop_gradient(_finite_or_zero(tf.reduce_max(initial, axis=-1)))  # [B]
        alpha, log_z = _normalize(tf.exp(initial - init_shift[:, None]) * emissions[0], semiring)
        log_z += init_shift + offsets[0]
    else:
        offsets = None
        alpha, log_z = _normalize(initial + emissions[0], semiring)
    # Position 0: α_1 = θ_0 ⊗ φ_1; a row of length 0 has log Z = 0 (the empty path).
    if mask is not None:
        log_z = tf.where(mask[0], log_z, tf.zeros_like(log_z))

    outers = [math.prod(sizes[:l]) for l in range(len(sizes))]
    inners = [math.prod(sizes[l + 1:]) for l in range(len(sizes))]

    def step(alpha, emission, factors):  # α_{t-1} [B, S], φ_t [B, S], θ_t factors
        new = alpha
        for f, outer, inner in zip(factors, outers, inners):
            new = _contract(new, f, outer, inner, semiring)
        new = new * emission if semiring == "scaled" else new + emission
        return _normalize(new, semiring)  # ([B, S], log of the scale [B])

    def body(carry, elems):
        emission, step_factors = elems
        step_factors = iter(step_factors)
        return step(carry[0], emission, [next(step_factors) if is_step else f
                                         for f, is_step in zip(transitions, per_step)])

    alphas, log_norms = tf.scan(
        body, (emissions[1:], tuple(f for f, is_step in zip(transitions, per_step) if is_step)),
        initializer=(alpha, tf.zeros_like(log_z)))  # [T-1, B, S], [T-1, B]
    if offsets is not None:
        log_norms += offsets[1:]
    if mask is not None:
        log_norms = tf.where(mask[1:], log_norms, tf.zeros_like(log_norms))
    log_z += tf.reduce_sum(log_norms, axis=0)
    # A row of probability 0 has log Z = −inf and no gradient (its earlier, finite normalisers
    # would otherwise give it marginals).
    impossible = tf.equal(log_z, -np.inf)
    log_z = tf.where(impossible, tf.fill(tf.shape(log_z), tf.constant(-np.inf, log_z.dtype)),
                     log_z)
    alphas = tf.concat([alpha[None], alphas], axis=0)  # [T, B, S]
    if semiring == "scaled":  # log 0 = −inf with a zero (not NaN) gradient
        positive = alphas > 0
        log_filtered = tf.where(positive, tf.math.log(tf.where(positive, alphas,
                                                               tf.ones_like(alphas))),
                                tf.fill(tf.shape(alphas), tf.constant(-np.inf, alphas.dtype)))
    else:
        log_filtered = alphas
    return ForwardResult(log_z, log_filtered)


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

    if semiring in ("log", "max"):
        result = _recursion(initial, transitions, per_step, emissions, mask, semiring)
    else:
        exact = scaled_is_exact(initial, transitions, emissions)  # [B]

        def run(potentials, all_exact: bool):
            initial, emissions, *transitions = potentials
            if all_exact:
                return _recursion(initial, transitions, per_step, emissions, mask, "scaled")
            log = _recursion(initial, transitions, per_step, emissions, mask, "log")
            if semiring == "auto":
                return log
            scaled = _recursion(initial, transitions, per_step, emissions, mask, "scaled")
            return ForwardResult(tf.where(exact, scaled.log_z, log.log_z),
                                 tf.where(exact[None, :, None], scaled.log_filtered,
                                          log.log_filtered))

        # "auto": scaled for all rows or log for all; "scaled": the scaled pass, rows that
        # break the rule recomputed in log space (both passes, only when needed).
        result = _branch(tf.reduce_all(exact), run, [initial, emissions] + transitions)
    return ForwardResult(result.log_z, result.log_filtered[:steps])


def _branch(predicate: tf.Tensor, run, potentials: list) -> ForwardResult:
    """run(potentials, predicate) as a `tf.cond`, differentiable under XLA.

    The gradient of a `tf.cond` whose branches hold while loops passes the loops' TensorList
    accumulators out of the cond, which XLA cannot compile (FakeParam of a variant). In a
    graph the cond is therefore wrapped in a custom gradient that reruns the taken branch
    under its own tape inside a second cond: the backward pass repeats the forward one (a
    hand-written backward pass would avoid this; see BENCHMARKS.md). Eagerly a Python branch
    runs instead.
    """
    if tf.executing_eagerly():
        return run(potentials, bool(predicate))

    @tf.custom_gradient
    def switched(*potentials):
        potentials = list(potentials)
        result = tf.cond(predicate, lambda: run(potentials, True), lambda: run(potentials, False))

        def grad(d_log_z, d_log_filtered):
            upstream = [tf.zeros_like(r) if d is None else d
                        for d, r in zip((d_log_z, d_log_filtered), result)]

            def taken(flag: bool):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(potentials)
                    rerun = run(potentials, flag)
                return tape.gradient(list(rerun), potentials, output_gradients=upstream,
                                     unconnected_gradients=tf.UnconnectedGradients.ZERO)

            return tf.cond(predicate, lambda: taken(True), lambda: taken(False))

        return tuple(result), grad

    return ForwardResult(*switched(*potentials))


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
