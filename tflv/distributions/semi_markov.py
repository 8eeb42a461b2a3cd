"""Semi-Markov chain (hidden semi-Markov model, segmental chain) with exact inference.

A segmentation z of positions 0..n-1 is a sequence of segments (s_i, e_i, k_i) covering them in
order, each of length l_i = e_i - s_i + 1 ∈ {1..L} and in one of K states; it scores

    score(z) = θ_0[k_1] + Σ_{i≥2} θ[k_{i-1}, k_i] + Σ_i (λ[k_i, l_i] + φ_{e_i}[l_i, k_i])

with initial θ_0 [K], transition θ [K, K], length λ [K, L] and segment log-potentials φ
[T, L, K] (φ_e[l, k]: the score of the segment of length l that ends at position e in state k,
from any network — e.g. log p(x_{s:e} | k) of a state's segment decoder in the neural templates
of Wiseman et al. 2018). The distribution is p(z) = exp(score(z) - log Z),
log Z = log Σ_z exp score(z) (Murphy 2002; Sarawagi & Cohen 2004).

* `log_partition(mask)`: log Z, by the forward recursion over the last L start scores
  (`_segmental.forward`), whose transition step is the HMM's (`_forward._contract`).
* `posterior(mask)`: log Z with the marginals p(segment (l, k) ends at e) [..., T, L, K] =
  ∂ log Z / ∂ φ (Eisner 2016) and p(position t is in state k) [..., T, K].
* `viterbi(mask)`: argmax_z score(z), max-semiring forward pass and backtrace.
* `sample(n, mask, seed)`: exact draws z ~ p(z) by forward-filtering backward-sampling.
* `log_prob(z, mask)` = score(z) - log Z, `score(z, mask)`.
* `segments_keeping_spans(span_lengths, L)`: the segments that leave given spans whole, to
  restrict a chain (by −inf segment potentials) to the segmentations that keep them.

A segmentation is a `Segmentation(states, ends)` of int32 [..., T] tensors: `states[t]` the state
of the segment covering t, `ends[t]` = l where a segment of length l ends at t and 0 elsewhere
(both 0 at padding). With L = 1 the chain is the HMM `HMM.from_log_potentials(θ_0, θ, φ[..., 0,
:] + λ[..., 0])`.

Batch shapes broadcast as in TFP: initial [..., K], transition [..., K, K], segment
[..., T, L, K], length [..., K, L] and mask [..., T]. mask is bool or 0/1, true for real
positions, a prefix per row; a padded row gives exactly the results of its unpadded prefix
(zero marginals and state 0 at padding; a row of length 0 has log Z = 0). −inf potentials
(forbidden transitions or lengths) are safe: zero marginals and gradients, never nan.

#### Examples

```python
chain = tflv.distributions.SemiMarkovChain(initial [B, K], transition [B, K, K],
                                           segment [B, T, L, K], length [B, K, L])
log_z = chain.log_partition(mask)               # [B]
post = chain.posterior(mask)                    # .segments [B, T, L, K], .states [B, T, K]
best = chain.viterbi(mask)                      # Segmentation(states, ends), int32 [B, T]
draws = chain.sample(10, mask, seed=(1, 2))     # Segmentation of [10, B, T]
```

#### References

Murphy, K. P. (2002). Hidden semi-Markov models (HSMMs). Technical report, MIT.

Sarawagi, S. & Cohen, W. W. (2004). Semi-Markov conditional random fields for information
extraction. NeurIPS.

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Wiseman, S., Shieber, S. M. & Rush, A. M. (2018). Learning neural templates for text
generation. EMNLP.

Rush, A. M. (2020). Torch-Struct: Deep structured prediction library. ACL demo track
(`SemiMarkov`).
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from tflv.distributions import _checks, _segmental
from tflv.distributions._forward import check_semiring


class Segmentation(NamedTuple):
    """states int32 [..., T] (state of the segment covering t); ends int32 [..., T] (l where a
    segment of length l ends at t, else 0)."""

    states: tf.Tensor
    ends: tf.Tensor


class SemiMarkovPosterior(NamedTuple):
    """log_partition [...]; segments p(length-l segment in state k ends at t) [..., T, L, K];
    states p(z_t = k) [..., T, K]."""

    log_partition: tf.Tensor
    segments: tf.Tensor
    states: tf.Tensor


class _Flat(NamedTuple):
    initial: tf.Tensor  # [B, K]
    transition: tf.Tensor  # [K, K] or [B, K, K]
    segments: tf.Tensor  # [T, B, L, K], length potentials added
    lengths: tf.Tensor | None  # int32 [B]
    mask: tf.Tensor | None  # bool [B, T]
    batch: _checks.BatchShape


def state_marginals(segments: tf.Tensor) -> tf.Tensor:
    """p(z_t = k) [..., T, K] from segment marginals [..., T, L, K]: position t lies in the
    segment (l, e) exactly when e - l < t <= e, so
    p(z_t = k) = Σ_l Σ_{o<l} p(a length-l segment in state k ends at t + o)."""
    steps, max_len = tf.shape(segments)[-3], segments.shape[-2]
    rank = segments.shape.rank
    total = tf.zeros_like(segments[..., 0, :])
    for l in range(max_len):
        for offset in range(l + 1):
            shifted = segments[..., offset:, l, :]  # segments ending at t + offset
            pad = [[0, 0]] * (rank - 3) + [[0, offset], [0, 0]]
            total += tf.pad(shifted, pad)[..., :steps, :]
    return total


def segments_keeping_spans(span_lengths, max_length: int) -> tf.Tensor:
    """Which segments leave given spans whole: bool [..., T, L], entry [e, l-1] true when the
    segment of length l ending at e either equals or avoids every span.

    A span is given by its length m ≥ 1 at its first position a (span_lengths [..., T], 0
    elsewhere) and covers a..a+m-1. Spans longer than `max_length` cannot be one segment and
    constrain nothing. Setting the segment log-potentials of the false entries to −inf
    restricts a chain to the segmentations in which every span is a segment; Wiseman et al.
    (2018) train neural templates so, the spans being the sentence's copies of record values.
    With non-overlapping spans at least one segmentation remains.

    >>> keep = segments_keeping_spans(tf.constant([0, 2, 0]), 2)   # span = positions 1..2
    >>> keep.numpy().astype(int).tolist()   # rows e = 0, 1, 2; columns l = 1, 2
    [[1, 1], [0, 0], [0, 1]]

    (Entry [0, 1], a segment that would start at −1, is the chain's to ignore.)
    """
    span_lengths = tf.cast(span_lengths, tf.int32)
    positions = tf.range(tf.shape(span_lengths)[-1])
    lengths = tf.range(1, max_length + 1)
    ends = positions[:, None, None]  # [T(e), 1, 1]
    starts = ends - lengths[None, :, None] + 1  # [T, L, 1]
    span_start = positions[None, None, :]  # [1, 1, T(a)]
    m = span_lengths[..., None, None, :]  # [..., 1, 1, T(a)]
    avoids = (span_start + m - 1 < starts) | (span_start > ends)
    equals = (span_start == starts) & (m == lengths[None, :, None])
    ignored = (m == 0) | (m > max_length)
    return tf.reduce_all(ignored | avoids | equals, axis=-1)


class SemiMarkovChain:
    """A batch of semi-Markov chains (module docstring).

    Args:
      initial_log_potentials: [..., K] θ_0.
      transition_log_potentials: [..., K, K] θ (rows: from-state).
      segment_log_potentials: [..., T, L, K] φ; entry [e, l-1, k] scores the segment of
        length l ending at e in state k (entries of segments that would start before 0 are
        ignored). L must be static.
      length_log_potentials: [..., K, L] λ, or None (zero).
      semiring: "scaled" (the transition step is a matmul) or "log" (logsumexp).
      validate_args: check masks and dynamic shapes with assertions.
      name: name scope.
    """

    def __init__(self, initial_log_potentials, transition_log_potentials, segment_log_potentials,
                 length_log_potentials=None, semiring: str = "scaled",
                 validate_args: bool = True, name: str = "SemiMarkovChain"):
        self._semiring = check_semiring(semiring, ("scaled", "log"))
        self._validate_args = validate_args
        self._name = name
        names = ["initial_log_potentials", "transition_log_potentials", "segment_log_potentials",
                 "length_log_potentials"]
        with tf.name_scope(name):
            initial = _checks.float_tensor(initial_log_potentials, name=names[0])
            params = [initial] + [None if p is None else _checks.float_tensor(p, initial.dtype, n)
                                  for p, n in zip((transition_log_potentials,
                                                   segment_log_potentials,
                                                   length_log_potentials), names[1:])]
        initial, transition, segment, length = params
        _checks.known_rank(initial, names[0], 1)
        _checks.known_rank(transition, names[1], 2)
        _checks.known_rank(segment, names[2], 3)
        if segment.shape[-2] is None:
            raise ValueError(f"{names[2]} must have a static maximum segment length L (axis -2 "
                             f"of [..., T, L, K]), got shape {segment.shape}")
        self._sizes = [(names[0], initial, -1), (names[1], transition, -2),
                       (names[1], transition, -1), (names[2], segment, -1)]
        parts = [(names[0], initial, 1), (names[1], transition, 2), (names[2], segment, 3)]
        if length is not None:
            _checks.known_rank(length, names[3], 2)
            self._sizes.append((names[3], length, -2))
            _checks.same_size([(names[2], segment, -2), (names[3], length, -1)],
                              "maximum segment length L", validate_args=False)
            parts.append((names[3], length, 2))
        _checks.same_size(self._sizes, "number of states K", validate_args=False)
        self._params = params
        self._parts = parts
        self._batch = _checks.BatchShape(parts)

    @property
    def batch_shape(self) -> tf.TensorShape:
        return self._batch.static

    @property
    def num_states(self) -> int | None:
        return self._params[0].shape[-1]

    @property
    def max_length(self) -> int:
        return self._params[2].shape[-2]

    @property
    def dtype(self) -> tf.DType:
        return self._params[0].dtype

    @property
    def semiring(self) -> str:
        return self._semiring

    @property
    def name(self) -> str:
        return self._name

    def _flat(self, mask) -> _Flat:
        checks = _checks.same_size(self._sizes, "number of states K", self._validate_args)
        initial, transition, segment, length = _checks.after(checks, *self._params)
        mask = _checks.as_mask(mask, segment[..., 0, 0])
        mask, = _checks.after(_checks.assert_prefix_mask(mask, self._validate_args), mask)
        parts = list(self._parts) + ([("mask", mask, 1)] if mask is not None else [])
        batch = _checks.BatchShape(parts)
        segments = batch.flatten(segment, 3)  # [B, T, L, K]
        if length is not None:
            segments += tf.linalg.matrix_transpose(batch.flatten(length, 2))[:, None]
        flat_mask = lengths = None
        if mask is not None:
            flat_mask = batch.flatten(mask, 1)
            lengths = tf.reduce_sum(tf.cast(flat_mask, tf.int32), axis=1)
        if transition.shape.rank > 2:  # a shared [K, K] stays shared: one matmul per step
            transition = batch.flatten(transition, 2)
        return _Flat(batch.flatten(initial, 1), transition,
                     tf.transpose(segments, [1, 0, 2, 3]), lengths, flat_mask, batch)

    def log_partition(self, mask=None) -> tf.Tensor:
        """log Z [...] (mask: [..., T])."""
        with tf.name_scope(f"{self._name}_log_partition"):
            flat = self._flat(mask)
            log_z = _segmental.forward(flat.initial, flat.transition, flat.segments,
                                       flat.lengths, self._semiring).log_z
            return flat.batch.unflatten(log_z)

    def posterior(self, mask=None) -> SemiMarkovPosterior:
        """log Z and the posterior marginals, from one forward pass and its gradient."""
        with tf.name_scope(f"{self._name}_posterior"):
            flat = self._flat(mask)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(flat.segments)
                log_z = _segmental.forward(flat.initial, flat.transition, flat.segments,
                                           flat.lengths, self._semiring).log_z
            segments = tape.gradient(log_z, flat.segments,
                                     unconnected_gradients=tf.UnconnectedGradients.ZERO)
            segments = tf.transpose(segments, [1, 0, 2, 3])  # [B, T, L, K]
            return SemiMarkovPosterior(flat.batch.unflatten(log_z),
                                       flat.batch.unflatten(segments),
                                       flat.batch.unflatten(state_marginals(segments)))

    def posterior_marginals(self, mask=None) -> tuple[tf.Tensor, tf.Tensor]:
        """(segment marginals [..., T, L, K], state marginals [..., T, K])."""
        result = self.posterior(mask)
        return result.segments, result.states

    def viterbi(self, mask=None) -> Segmentation:
        """The highest-scoring segmentation (int32 [..., T] states and ends)."""
        with tf.name_scope(f"{self._name}_viterbi"):
            flat = self._flat(mask)
            betas = _segmental.forward(flat.initial, flat.transition, flat.segments,
                                       flat.lengths, "max").log_beta
            found = _segmental.backtrack(betas, flat.transition, flat.segments, flat.lengths)
            return Segmentation(*(flat.batch.unflatten(t) for t in found))

    def sample(self, n: int = 1, mask=None, seed=None) -> Segmentation:
        """n exact draws z ~ p(z) by forward-filtering backward-sampling: int32 [n, ..., T]."""
        with tf.name_scope(f"{self._name}_sample"):
            flat = self._flat(mask)
            betas = _segmental.forward(flat.initial, flat.transition, flat.segments,
                                       flat.lengths, self._semiring).log_beta
            tile = lambda t, axis: tf.tile(t, [n if a == axis else 1 for a in range(t.shape.rank)])
            transition = flat.transition
            if transition.shape.rank == 3:
                transition = tile(transition, 0)
            lengths = None if flat.lengths is None else tile(flat.lengths, 0)
            segments = tile(flat.segments, 1)  # [T, n * B, L, K], sample-major
            noise = tfp.distributions.Gumbel(tf.zeros([], self.dtype), 1.0).sample(
                tf.shape(segments), seed=tfp.random.sanitize_seed(seed))
            found = _segmental.backtrack(tile(betas, 1), transition, segments, lengths, noise)
            return Segmentation(*(flat.batch.unflatten(
                tf.reshape(t, tf.concat([[n, -1], tf.shape(t)[1:]], 0)), sample_rank=1)
                for t in found))

    def score(self, segmentation: Segmentation, mask=None) -> tf.Tensor:
        """score(z) [...] of segmentations z (batch shape broadcastable to the chain's)."""
        with tf.name_scope(f"{self._name}_score"):
            states, ends = (tf.convert_to_tensor(t, tf.int32) for t in segmentation)
            flat = self._flat(mask)
            segments = tf.transpose(flat.segments, [1, 0, 2, 3])  # [B, T, L, K]
            steps = tf.shape(segments)[1]
            states = flat.batch.flatten(states, 1)
            ends = flat.batch.flatten(ends, 1)
            real = (tf.ones_like(states, tf.bool) if flat.mask is None else flat.mask)
            is_end = (ends > 0) & real
            picked = tf.gather(tf.gather(segments, tf.maximum(ends - 1, 0), axis=2,
                                         batch_dims=2), states, axis=2, batch_dims=2)  # [B, T]
            total = tf.reduce_sum(tf.where(is_end, picked, tf.zeros_like(picked)), axis=1)
            first = tf.gather(flat.initial, states[:, 0], batch_dims=1)
            total += tf.where(real[:, 0], first, tf.zeros_like(first))
            following = tf.concat([states[:, 1:], tf.zeros_like(states[:, :1])], 1)
            if flat.transition.shape.rank == 2:
                edges = tf.gather_nd(flat.transition, tf.stack([states, following], -1))
            else:
                edges = tf.gather(tf.gather(flat.transition, states, batch_dims=1), following,
                                  axis=2, batch_dims=2)
            inner = is_end & tf.concat([real[:, 1:], tf.zeros_like(real[:, :1])], 1)
            inner &= tf.range(steps)[None, :] < steps - 1
            total += tf.reduce_sum(tf.where(inner, edges, tf.zeros_like(edges)), axis=1)
            return flat.batch.unflatten(total)

    def log_prob(self, segmentation: Segmentation, mask=None) -> tf.Tensor:
        """log p(z) = score(z) - log Z [...]."""
        return self.score(segmentation, mask) - self.log_partition(mask)
