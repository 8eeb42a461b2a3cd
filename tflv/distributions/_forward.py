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
  to one. log Z is the sum of the logs of the scales and of the subtracted maxima. Exact in
  float32 while each potential's range within one matrix or position stays below ~80 nats
  (float32 underflows at e^-87); beyond that use `"log"`.
* `"log"`: the sum semiring in log space (logsumexp), O(S²) elementwise work per step.
* `"max"`: the max-plus semiring (Viterbi).

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

import tensorflow as tf

SEMIRINGS = ("scaled", "log", "max")


class ForwardResult(NamedTuple):
    """log_z: [B] (log Z, or the Viterbi score for "max"); log_filtered: [T, B, S] log α_t."""

    log_z: tf.Tensor
    log_filtered: tf.Tensor


def check_semiring(semiring: str, allowed: Sequence[str] = SEMIRINGS) -> str:
    if semiring not in allowed:
        raise ValueError(f"semiring must be one of {tuple(allowed)}, got {semiring!r}")
    return semiring


def _normalize(alpha: tf.Tensor, semiring: str) -> tuple[tf.Tensor, tf.Tensor]:
    """alpha: [B, S] -> (alpha rescaled so that ⊕ alpha = 1, log of the scale [B])."""
    if semiring == "scaled":
        total = tf.reduce_sum(alpha, axis=-1, keepdims=True)
        return alpha / total, tf.math.log(total[:, 0])
    reduce = tf.reduce_logsumexp if semiring == "log" else tf.reduce_max
    norm = reduce(alpha, axis=-1, keepdims=True)
    return alpha - norm, norm[:, 0]


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
        reduce = tf.reduce_logsumexp if semiring == "log" else tf.reduce_max
        out = reduce(view + edges, axis=2)  # [B, outer, K, inner]
    return tf.reshape(out, tf.shape(alpha))


def forward(initial: tf.Tensor, transitions: Sequence[tf.Tensor], emissions: tf.Tensor,
            mask: tf.Tensor | None = None, semiring: str = "scaled") -> ForwardResult:
    """Runs the forward recursion (module docstring) over a batch of chains.

    Args:
      initial: [B, S] initial log-potentials θ_0.
      transitions: L Kronecker factors with Π_l K_l = S, each [K_l, K_l] (shared by all rows
        and steps), [B, K_l, K_l] (per row) or [T-1, B, K_l, K_l] (per step, time-major; entry
        t-1 scores z_{t-1} -> z_t). With L > 1 every K_l must be static.
      emissions: [T, B, S] emission log-potentials φ_t (time-major).
      mask: bool [T, B], true for real positions (a prefix per row), or None.
      semiring: "scaled", "log" or "max".

    Returns:
      ForwardResult(log_z [B], log_filtered [T, B, S]).
    """
    check_semiring(semiring)
    transitions = list(transitions)
    sizes = [f.shape[-1] for f in transitions]
    if len(transitions) > 1 and any(k is None for k in sizes):
        raise ValueError(f"Kronecker transition factors need static sizes, got {sizes}")
    per_step = [f.shape.rank == 4 for f in transitions]
    if mask is not None:
        # Padding must not produce inf/nan that a tf.where gradient would turn into nan.
        emissions = tf.where(mask[..., None], emissions, tf.zeros_like(emissions))
        transitions = [tf.where(mask[1:, :, None, None], f, tf.zeros_like(f)) if is_step else f
                       for f, is_step in zip(transitions, per_step)]

    if semiring == "scaled":
        shift = tf.stop_gradient(tf.reduce_max(emissions, axis=-1))  # [T, B]
        emissions = tf.exp(emissions - shift[..., None])
        offsets = shift  # [T, B], added to log Z at each real step
        scaled = []
        for f in transitions:
            f_shift = tf.stop_gradient(tf.reduce_max(f, axis=[-2, -1]))  # [], [B] or [T-1, B]
            scaled.append(tf.exp(f - f_shift[..., None, None]))
            step_offset = f_shift if f.shape.rank == 4 else tf.broadcast_to(
                f_shift, tf.shape(offsets[1:]))
            offsets += tf.pad(step_offset, [[1, 0], [0, 0]])
        transitions = scaled
        init_shift = tf.stop_gradient(tf.reduce_max(initial, axis=-1))  # [B]
        alpha, log_z = _normalize(tf.exp(initial - init_shift[:, None]) * emissions[0], semiring)
        log_z += init_shift + offsets[0]
    else:
        offsets = tf.zeros(tf.shape(emissions)[:2], emissions.dtype)
        alpha, log_z = _normalize(initial + emissions[0], semiring)
    # Position 0: α_1 = θ_0 ⊗ φ_1; a row of length 0 has log Z = 0 (the empty path).
    if mask is not None:
        log_z = tf.where(mask[0], log_z, tf.zeros_like(log_z))

    outers = [math.prod(sizes[:l]) for l in range(len(sizes))]
    inners = [math.prod(sizes[l + 1:]) for l in range(len(sizes))]

    def step(carry, elems):
        alpha, _ = carry
        emission, step_factors = elems  # [B, S], per-step factors
        step_factors = iter(step_factors)
        new = alpha
        for f, is_step, outer, inner in zip(transitions, per_step, outers, inners):
            new = _contract(new, next(step_factors) if is_step else f, outer, inner, semiring)
        new = new * emission if semiring == "scaled" else new + emission
        return _normalize(new, semiring)  # ([B, S], log of the scale [B])

    step_factors = tuple(f for f, is_step in zip(transitions, per_step) if is_step)
    alphas, log_norms = tf.scan(step, (emissions[1:], step_factors),
                                initializer=(alpha, tf.zeros_like(log_z)))  # [T-1, B, S], [T-1, B]
    log_norms += offsets[1:]
    if mask is not None:
        log_norms = tf.where(mask[1:], log_norms, tf.zeros_like(log_norms))
    log_z += tf.reduce_sum(log_norms, axis=0)
    alphas = tf.concat([alpha[None], alphas], axis=0)  # [T, B, S]
    log_filtered = tf.math.log(alphas) if semiring == "scaled" else alphas
    return ForwardResult(log_z, log_filtered)


def log_partition_gradients(initial: tf.Tensor, transitions: Sequence[tf.Tensor],
                            emissions: tf.Tensor, mask: tf.Tensor | None = None,
                            semiring: str = "scaled", wrt: Sequence[str] = ("emissions",)
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
