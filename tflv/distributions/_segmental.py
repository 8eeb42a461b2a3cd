"""The forward recursion of a semi-Markov chain over the last L start scores, and its backtrace.

A segmentation of positions 0..n-1 into segments (s_i, e_i, k_i) (start, end inclusive,
state), each of length l_i = e_i - s_i + 1 ∈ {1..L}, scores

    score = θ_0[k_1] + Σ_{i≥2} θ[k_{i-1}, k_i] + Σ_i ψ_{e_i}[l_i, k_i]

where ψ_e[l, k] scores a segment of length l that ends at e in state k (its emission and length
log-potentials added). With β_s[k] the log-sum of all segmentations of 0..s-1 followed by a
transition into a segment in state k starting at s, and α_e[k] that of all segmentations of
0..e whose last segment ends at e in state k (Murphy 2002; Sarawagi & Cohen 2004):

    β_0 = θ_0,    α_e[k] = ⊕_{l=1..min(L, e+1)} β_{e-l+1}[k] ⊗ ψ_e[l, k],
    β_{s}[j] = ⊕_k α_{s-1}[k] ⊗ θ[k, j],    log Z = ⊕_k α_{n-1}[k].

The loop carries the last L start scores β_{e-L+1..e} and does, per position, one K × K
transition contraction — `_forward._contract`, the HMM's (a matmul in the "scaled" semiring,
max in "max"; a −inf-safe logsumexp in "log") — and one ⊕ over L. Scores stay in log space
between steps; in "scaled" the contraction exponentiates α_e after subtracting its row
maximum and θ after subtracting its maximum (exact in float32 while θ's range stays below ~80
nats).

−inf is safe everywhere: a forbidden transition, a segment start before position 0, a state
that no path reaches. Every logarithm of a possibly zero sum is taken as log(s + [s = 0]) plus
log [s > 0] (`safe_log`), and the log-space ⊕ is the HMM's −inf-safe `_forward.logsumexp`, so
an all −inf ⊕ gives −inf with zero (not nan) gradients.

Posterior marginals are ∂ log Z / ∂ ψ (Eisner 2016). The backtrace reads one segment per
iteration from the end: given the next segment's state j (none for the last segment),

    (l, k) = argmax_{l, k} β_{e-l+1}[k] + ψ_e[l, k] + θ[k, j] (+ g[l, k]),

then e ← e - l. With max-semiring β it is Viterbi's; with sum-semiring β and i.i.d. standard
Gumbel g it draws (l, k) exactly from p(last segment | the segments after it, x)
(forward-filtering backward-sampling; Gumbel-max trick).

Tensors are time-major: ψ [T, B, L, K]; lengths n [B].

#### References

Murphy, K. P. (2002). Hidden semi-Markov models (HSMMs). Technical report, MIT.

Sarawagi, S. & Cohen, W. W. (2004). Semi-Markov conditional random fields for information
extraction. NeurIPS.

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Wiseman, S., Shieber, S. M. & Rush, A. M. (2018). Learning neural templates for text
generation. EMNLP.
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tflv.distributions._forward import _contract, logsumexp


class SegmentalForward(NamedTuple):
    """log_z [B]; log_alpha [T, B, K] (α_e); log_beta [T, B, K] (β_s, s = 0..T-1)."""

    log_z: tf.Tensor
    log_alpha: tf.Tensor
    log_beta: tf.Tensor


def safe_log(x: tf.Tensor) -> tf.Tensor:
    """log x for x >= 0: −inf at 0 with a zero (not nan) gradient there.

    log(x + [x = 0]) + log [x > 0]: the first term is finite with a finite derivative, the
    second is 0 or −inf and carries no gradient (a comparison).
    """
    return (tf.math.log(x + tf.cast(tf.equal(x, 0), x.dtype))
            + tf.math.log(tf.cast(x > 0, x.dtype)))


def _reduce(x: tf.Tensor, axis: int, semiring: str) -> tf.Tensor:
    return tf.reduce_max(x, axis=axis) if semiring == "max" else logsumexp(x, axis)


def _transition_step(transition: tf.Tensor, semiring: str):
    """α [B, K] ↦ β [B, K], β[j] = ⊕_k α[k] ⊗ θ[k, j], through `_forward._contract`."""
    if semiring == "max":
        return lambda alpha: _contract(alpha, transition, 1, 1, semiring)
    if semiring == "log":  # _contract's logsumexp is not −inf safe: the same ⊕, made safe.
        edges = transition if transition.shape.rank == 3 else transition[None]
        return lambda alpha: logsumexp(alpha[:, :, None] + edges, 1)
    shift = tf.stop_gradient(tf.reduce_max(transition, axis=[-2, -1], keepdims=True))
    shift = tf.where(tf.math.is_finite(shift), shift, tf.zeros_like(shift))
    factor = tf.exp(transition - shift)  # [K, K] or [B, K, K], entries in [0, 1]
    shift = tf.reshape(shift, [-1, 1])  # [1, 1] or [B, 1]

    def step(alpha):
        top = tf.stop_gradient(tf.reduce_max(alpha, axis=-1, keepdims=True))
        top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))
        return safe_log(_contract(tf.exp(alpha - top), factor, 1, 1, "scaled")) + top + shift

    return step


def valid_segments(segments: tf.Tensor, lengths: tf.Tensor | None) -> tf.Tensor:
    """ψ [T, B, L, K] with −inf for segments that would start before position 0, and 0 for
    segments ending at padding (t >= n; finite, so nothing there can make a nan gradient)."""
    steps, max_len = tf.shape(segments)[0], tf.shape(segments)[2]
    starts = tf.range(steps)[:, None] - tf.range(max_len)[None, :]  # [T, L]
    segments = tf.where((starts >= 0)[:, None, :, None], segments,
                        tf.constant(-float("inf"), segments.dtype))
    if lengths is None:
        return segments
    real = tf.range(steps)[:, None] < lengths[None, :]  # [T, B]
    return tf.where(real[:, :, None, None], segments, tf.zeros_like(segments))


def forward(initial: tf.Tensor, transition: tf.Tensor, segments: tf.Tensor,
            lengths: tf.Tensor | None = None, semiring: str = "scaled") -> SegmentalForward:
    """The recursion of the module docstring.

    Args:
      initial: [B, K] θ_0.
      transition: [K, K] (shared) or [B, K, K] (per row) θ, rows the from-state.
      segments: [T, B, L, K] ψ, length and emission log-potentials added; entry [e, b, l-1, k]
        scores the segment of length l ending at e in state k. L must be static.
      lengths: int32 [B] real positions per row, or None (all T).
      semiring: "scaled", "log" or "max".

    Returns:
      SegmentalForward(log_z [B] (0 for a row of length 0), log_alpha, log_beta [T, B, K]).
    """
    max_len = segments.shape[2]
    if max_len is None:
        raise ValueError(f"the maximum segment length L must be static, got segment "
                         f"potentials of shape {segments.shape}")
    segments = valid_segments(segments, lengths)
    contract = _transition_step(transition, semiring)
    batch, states = tf.shape(initial)[0], tf.shape(initial)[1]
    # buffer[:, j] = β_{e-j}: the starts of segments of length j+1 ending at e.
    buffer = tf.concat([initial[:, None, :], tf.fill(
        tf.stack([batch, max_len - 1, states]), tf.constant(-float("inf"), initial.dtype))], 1)

    def step(buffer, segment):  # segment: [B, L, K]
        alpha = _reduce(buffer + segment, 1, semiring)  # [B, K]
        return tf.concat([contract(alpha)[:, None], buffer[:, :-1]], axis=1)

    # The loop carries and stacks only the buffers; every α_e is then one vectorised ⊕ over
    # the buffer before step e (the loop's backward pass then has one stacked tensor to read).
    buffers = tf.concat([buffer[None], tf.scan(step, segments[:-1], initializer=buffer)], 0)
    alphas = _reduce(buffers + segments, 2, semiring)  # [T, B, K]
    betas = buffers[:, :, 0]  # β_0..β_{T-1}
    steps = tf.shape(segments)[0]
    if lengths is None:
        lengths = tf.fill([batch], steps)
    last = tf.gather(tf.transpose(alphas, [1, 0, 2]), tf.maximum(lengths - 1, 0),
                     batch_dims=1)  # [B, K]
    log_z = _reduce(last, 1, semiring)
    log_z = tf.where(lengths > 0, log_z, tf.zeros_like(log_z))
    return SegmentalForward(log_z, alphas, betas)


class Segments(NamedTuple):
    """Per position of a row: states int32 [B, T] (the state of the segment covering t) and
    ends int32 [B, T] (l where a segment of length l ends at t, else 0); 0 at padding."""

    states: tf.Tensor
    ends: tf.Tensor


def backtrack(log_beta: tf.Tensor, transition: tf.Tensor, segments: tf.Tensor,
              lengths: tf.Tensor | None = None, noise: tf.Tensor | None = None) -> Segments:
    """Reads a segmentation backwards (module docstring).

    Args:
      log_beta: [T, B, K] β_s of `forward` (max semiring for Viterbi, sum for sampling).
      transition: [K, K] or [B, K, K] θ.
      segments: [T, B, L, K] ψ as given to `forward`.
      lengths: int32 [B] or None.
      noise: [T, B, L, K] Gumbel noise (one draw per iteration) or None for the argmax.

    Returns:
      Segments(states, ends), each int32 [B, T].
    """
    steps, batch = tf.shape(segments)[0], tf.shape(segments)[1]
    max_len, num_states = segments.shape[2], tf.shape(segments)[3]
    segments = valid_segments(segments, lengths)
    if lengths is None:
        lengths = tf.fill([batch], steps)
    by_row = tf.transpose(segments, [1, 0, 2, 3])  # [B, T, L, K]
    beta_by_row = tf.transpose(log_beta, [1, 0, 2])  # [B, T, K]
    offsets = tf.range(max_len)
    if noise is None:
        noise = tf.zeros([steps, 1, 1, 1], segments.dtype)

    def column(state):  # θ[:, state] per row: [B, K]
        if transition.shape.rank == 2:
            return tf.gather(tf.transpose(transition), state)
        return tf.gather(transition, state, axis=2, batch_dims=1)

    def step(carry, step_noise):
        end, following = carry[:2]  # [B]: last position still to cover (-1: done); next state
        active = end >= 0
        at = tf.maximum(end, 0)
        starts = at[:, None] - offsets[None, :]  # [B, L]
        start_scores = tf.gather(beta_by_row, tf.maximum(starts, 0), batch_dims=1)  # [B, L, K]
        score = start_scores + tf.gather(by_row, at, batch_dims=1) + step_noise
        edges = column(tf.maximum(following, 0))
        score += tf.where((following >= 0)[:, None, None], edges[:, None, :],
                          tf.zeros_like(edges[:, None, :]))
        best = tf.argmax(tf.reshape(score, [batch, -1]), axis=-1, output_type=tf.int32)
        length, state = best // num_states + 1, best % num_states
        carried = (tf.where(active, end - length, end), tf.where(active, state, following),
                   at, tf.where(active, length, 0), state)
        # the carry keeps its static [B] (the reshape above loses it when only lengths know B)
        return tuple(tf.ensure_shape(t, end.shape) for t in carried)

    zeros = tf.zeros([batch], tf.int32)
    _, _, ends_at, seg_lengths, seg_states = tf.scan(
        step, noise, initializer=(lengths - 1, zeros - 1, zeros, zeros, zeros))  # each [T, B]
    rows = tf.broadcast_to(tf.range(batch)[None, :], tf.shape(ends_at))
    ends = tf.scatter_nd(tf.reshape(tf.stack([rows, ends_at], -1), [-1, 2]),
                         tf.reshape(seg_lengths, [-1]), tf.stack([batch, steps]))  # [B, T]
    # Position t lies in the c-th segment from the end, c = #ends at or after t.
    count = tf.cumsum(tf.cast(ends > 0, tf.int32), axis=1, reverse=True)
    states = tf.gather(tf.transpose(seg_states), tf.maximum(count - 1, 0), batch_dims=1)
    real = tf.range(steps)[None, :] < lengths[:, None]
    return Segments(tf.where(real, states, tf.zeros_like(states)), ends)
