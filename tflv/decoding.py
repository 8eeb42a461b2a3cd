"""Greedy, beam-search and temperature decoding of any autoregressive model.

A model exposes one step of its conditional distribution,

    step_fn(tokens int32 [N], state) -> (log_probs [N, V], state),

log p(y_t | y_<t, x) for the N rows, where `state` is any nest of tensors with leading dimension N
(recurrent states, and whatever per-row constants the step needs, such as the encoded source).
V may differ between calls of a decoder (a copy model's per-batch extended vocabulary) but not
within one.

- `greedy`: y_t = argmax_v log p(v | y_<t, x), until `<eos>` or `max_length`.
- `beam_search`: keeps the K best hypotheses, ranked by the length-normalised score

      s(y) = log p(y | x) / lp(|y|),   lp(n) = ((5 + n) / 6)^α   (Wu et al. 2016),

  (α = 0: the raw log-probability); a hypothesis that emitted `<eos>` stays in the beam, extended
  only by padding at no cost, so finished and live hypotheses compete on the same normalised
  score. With K = 1 every live candidate has the same length, so the choice is greedy's argmax.

Both return token ids (`<eos>` included, padding id 0 after it) and log p(y | x).

- `sample_tokens`: one token per row drawn from the tempered distribution

      p_τ(v) ∝ exp(logit_v / τ),

  whose limit τ → 0 puts all mass on the argmax; τ = 0 *is* that limit (greedy), so every
  ancestral sampler built on it (`tflv.layers.RNNDecoder.sample`, `CNNDecoder.sample`, the
  `sample` and `homotopy` signatures) decodes greedily at temperature 0.

#### References
- Sutskever, Vinyals & Le (2014). Sequence to Sequence Learning with Neural Networks (beam search).
- Wu et al. (2016). Google's Neural Machine Translation System. arXiv:1609.08144 (length penalty).
"""
from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

StepFn = Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]]
PAD_ID = 0


def sample_tokens(logits: tf.Tensor, temperature, seed) -> tf.Tensor:
    """One draw per row from softmax(logits / τ); τ = 0 gives the argmax (greedy decoding).

    Args:
      logits: float `[N, V]` unnormalised log-probabilities.
      temperature: τ ≥ 0, a Python number or a scalar tensor (e.g. a serving signature's input).
      seed: int32 `[2]` stateless seed; the draws are a deterministic function of it.

    Returns:
      int32 `[N]` token ids in [0, V).

    Raises:
      ValueError / InvalidArgumentError: τ < 0.

    >>> logits = tf.math.log([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    >>> sample_tokens(logits, 0.0, seed=[1, 2]).numpy().tolist()
    [1, 0]
    """
    if isinstance(temperature, (int, float)) and temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    logits = tf.convert_to_tensor(logits)
    temperature = tf.cast(temperature, logits.dtype)
    with tf.control_dependencies([tf.debugging.assert_non_negative(
            temperature, message="temperature must be >= 0 (0: greedy)")]):
        positive = temperature > 0
    # logits / 0 would be ±inf or NaN, from which the categorical draws an id outside [0, V).
    scaled = logits / tf.where(positive, temperature, tf.ones_like(temperature))
    drawn = tf.random.stateless_categorical(scaled, 1, seed=tf.cast(seed, tf.int32))[:, 0]
    best = tf.argmax(logits, axis=-1)
    return tf.cast(tf.where(positive, drawn, best), tf.int32)


def length_penalty(lengths: tf.Tensor, alpha: float) -> tf.Tensor:
    """lp(n) = ((5 + n) / 6)^α, float32 of the shape of `lengths`."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def _check(max_length: int, beam_size: int = 1) -> None:
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")


def _write(ids: tf.Tensor, t: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
    """ids [..., L] with column t set to tokens [...]."""
    at_t = tf.equal(tf.range(tf.shape(ids)[-1]), t)
    return tf.where(at_t, tokens[..., None], ids)


def _while_over_rows(body, loop, max_length: int):
    """`tf.while_loop` over decoding steps, its loop variables' row (first) dimension left
    free: a step function whose outputs lose the static batch size (a reshape by a computed
    shape) must not fail a loop entered with a statically known one."""
    invariants = tf.nest.map_structure(
        lambda x: x.shape if x.shape.rank in (None, 0) else
        tf.TensorShape([None]).concatenate(x.shape[1:]), loop)
    return tf.while_loop(lambda t, *rest: (t < max_length) & ~tf.reduce_all(rest[-1]), body,
                         loop, shape_invariants=invariants)


def greedy(step_fn: StepFn, initial_state, start_ids: tf.Tensor, max_length: int,
           eos_id: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy decoding.

    Args:
      step_fn: see the module docstring.
      initial_state: nest of tensors `[B, ...]`.
      start_ids: int32 `[B]` first input tokens (`<bos>`).
      max_length: most tokens to emit (`<eos>` included).
      eos_id: the end token.

    Returns:
      `(ids int32 [B, max_length], log_prob float32 [B])`.
    """
    _check(max_length)
    start_ids = tf.cast(start_ids, tf.int32)
    batch = tf.shape(start_ids)[0]

    def body(t, tokens, state, ids, log_prob, finished):
        log_probs, state = step_fn(tokens, state)  # [B, V]
        best = tf.cast(tf.argmax(log_probs, axis=-1), tf.int32)  # [B]
        gain = tf.reduce_max(log_probs, axis=-1)
        best = tf.where(finished, PAD_ID, best)
        log_prob += tf.where(finished, 0.0, tf.cast(gain, tf.float32))
        ids = _write(ids, t, best)
        return t + 1, best, state, ids, log_prob, finished | tf.equal(best, eos_id)

    loop = (tf.constant(0), start_ids, initial_state, tf.zeros([batch, max_length], tf.int32),
            tf.zeros([batch]), tf.zeros([batch], tf.bool))
    _, _, _, ids, log_prob, _ = _while_over_rows(body, loop, max_length)
    return ids, log_prob


def beam_search(step_fn: StepFn, initial_state, start_ids: tf.Tensor, max_length: int,
                eos_id: int, beam_size: int, alpha: float = 0.0) -> tuple[tf.Tensor, tf.Tensor]:
    """Beam search with length normalisation (see the module docstring).

    Args:
      step_fn, initial_state, start_ids, max_length, eos_id: as in `greedy`.
      beam_size: K.
      alpha: the length-penalty exponent α (0: rank by log-probability).

    Returns:
      `(ids int32 [B, max_length], log_prob float32 [B])` of the best hypothesis of each row by
      the normalised score.
    """
    _check(max_length, beam_size)
    k = beam_size
    start_ids = tf.cast(start_ids, tf.int32)
    batch = tf.shape(start_ids)[0]
    tile = lambda x: tf.repeat(x, k, axis=0)  # [B, ...] -> [B*K, ...], beams of a row adjacent
    neg_inf = float("-inf")
    scores = tf.tile(tf.constant([[0.0] + [neg_inf] * (k - 1)]), [batch, 1])  # [B, K]

    def body(t, tokens, state, ids, scores, lengths, finished):
        log_probs, state = step_fn(tokens, state)  # [B*K, V]
        vocab = tf.shape(log_probs)[-1]
        log_probs = tf.reshape(tf.cast(log_probs, tf.float32), [batch, k, vocab])
        pad_only = tf.one_hot(PAD_ID, vocab, on_value=0.0, off_value=neg_inf)  # [V]
        log_probs = tf.where(finished[..., None], pad_only, log_probs)
        candidates = tf.reshape(scores[..., None] + log_probs, [batch, k * vocab])
        candidate_lengths = tf.repeat(lengths + tf.cast(~finished, tf.int32), vocab, axis=1)
        ranked = candidates / length_penalty(candidate_lengths, alpha)  # [B, K*V]
        _, index = tf.math.top_k(ranked, k)  # [B, K]
        parent, token = index // vocab, index % vocab
        scores = tf.gather(candidates, index, batch_dims=1)
        lengths = tf.gather(candidate_lengths, index, batch_dims=1)
        finished = tf.gather(finished, parent, batch_dims=1) | tf.equal(token, eos_id)
        ids = _write(tf.gather(ids, parent, batch_dims=1), t, token)  # [B, K, L]
        rows = tf.reshape(parent + k * tf.range(batch)[:, None], [-1])  # [B*K]
        state = tf.nest.map_structure(lambda s: tf.gather(s, rows), state)
        return t + 1, tf.reshape(token, [-1]), state, ids, scores, lengths, finished

    loop = (tf.constant(0), tile(start_ids), tf.nest.map_structure(tile, initial_state),
            tf.zeros([batch, k, max_length], tf.int32), scores, tf.zeros([batch, k], tf.int32),
            tf.zeros([batch, k], tf.bool))
    _, _, _, ids, scores, lengths, _ = _while_over_rows(body, loop, max_length)
    best = tf.argmax(scores / length_penalty(lengths, alpha), axis=-1, output_type=tf.int32)
    return tf.gather(ids, best, batch_dims=1), tf.gather(scores, best, batch_dims=1)
