"""Attention as an alignment distribution over source positions: soft or latent.

Given decoder queries q_t and an encoded source (memory) m_1..m_S, the alignment distribution is

    p(z_t = s | q_t, m) = softmax_s score(q_t, m_s),   s ranging over the unpadded positions,
    score(q, m) = v^T tanh(W q + U m)      (additive, Bahdanau et al. 2015), or
    score(q, m) = q^T W m                  (bilinear, Luong et al. 2015).

Soft attention feeds the decoder the expected memory c_t = E_{p(z_t)}[m_{z_t}] = Σ_s α_ts m_s
(`soft_context`). Latent attention (Deng et al. 2018) treats z_t as a categorical latent variable
and marginalises the output instead of the input:

    p(y_t | y_<t, x) = Σ_s p(z_t = s | ·) p(y_t | y_<t, x, z_t = s),

with the same layer giving the prior p(z_t | x, y_<t) and, fed queries from a bidirectional pass
over the whole target, the inference network q(z_t | x, y). The layer returns the log
alignment probabilities; how they are used (context or mixture weights) is the model's choice.

#### References
- Bahdanau, Cho & Bengio (2015). Neural Machine Translation by Jointly Learning to Align and
  Translate. ICLR.
- Luong, Pham & Manning (2015). Effective Approaches to Attention-based Neural Machine
  Translation. EMNLP.
- Deng, Kim, Chiu, Guo & Rush (2018). Latent Alignment and Variational Attention. NeurIPS.
"""
from __future__ import annotations

import keras
import tensorflow as tf

SCORES = ("additive", "bilinear")
# Score of padded positions: finite (so gradients stay finite), far below any real score.
MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="tflv")
class Attention(keras.layers.Layer):
    """Queries and memory → log p(z_t = s), masked and normalised over source positions.

    Args:
      units: width of the additive score's hidden layer (ignored by `bilinear`).
      score: `"additive"` (Bahdanau et al. 2015) or `"bilinear"` (Luong et al. 2015).

    Call arguments:
      inputs: a tuple `(query, memory, memory_mask)`:
        query `(batch_size, target_length, query_dim)`,
        memory `(batch_size, source_length, memory_dim)`,
        memory_mask `(batch_size, source_length)`, float/bool, true on real source tokens
        (every row needs at least one).

    Returns:
      log alignment probabilities `(batch_size, target_length, source_length)`; padded positions
      get probability 0 (log ≈ -1e9).

    Examples:
    >>> attention = Attention(units=8)
    >>> memory_mask = tf.constant([[1.0] * 5, [1.0, 1.0, 0.0, 0.0, 0.0]])  # source lengths 5, 2
    >>> log_alignment = attention((tf.zeros([2, 3, 4]), tf.zeros([2, 5, 6]), memory_mask))
    >>> print(tf.exp(log_alignment)[:, 0].numpy().round(2))   # equal scores: uniform on the real tokens
    [[0.2 0.2 0.2 0.2 0.2]
     [0.5 0.5 0.  0.  0. ]]
    """

    def __init__(self, units: int = 256, score: str = "additive", **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        if score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
        self.units = units
        self.score = score
        self.supports_masking = True  # padding comes as `memory_mask`; Keras masks are dropped
        if score == "additive":
            self.query_dense = keras.layers.Dense(units, use_bias=False, dtype=policy, name="query")
            self.memory_dense = keras.layers.Dense(units, dtype=policy, name="memory")
            self.vector = keras.layers.Dense(1, use_bias=False, dtype=policy, name="vector")
        else:
            self.query_dense = None

    def build(self, input_shape):
        query_shape, memory_shape, _ = input_shape
        if self.score == "additive":
            self.query_dense.build(query_shape)
            self.memory_dense.build(memory_shape)
            self.vector.build(tuple(memory_shape[:-1]) + (self.units,))
        else:
            self.kernel = self.add_weight(name="kernel", shape=(query_shape[-1], memory_shape[-1]),
                                          initializer="glorot_uniform")
        self.built = True

    def call(self, inputs):
        query, memory, memory_mask = inputs
        if self.score == "additive":
            q = self.query_dense(query)[:, :, None, :]  # [B, T, 1, U]
            m = self.memory_dense(memory)[:, None, :, :]  # [B, 1, S, U]
            scores = self.vector(tf.tanh(q + m))[..., 0]  # [B, T, S]
        else:
            kernel = tf.cast(self.kernel, query.dtype)  # float32 variable
            scores = tf.einsum("btq,qm,bsm->bts", query, kernel, tf.cast(memory, query.dtype))
        if scores.dtype.size < 4:  # half precision (a mixed policy): the log-softmax in float32
            scores = tf.cast(scores, tf.float32)
        keep = tf.cast(memory_mask, tf.bool)[:, None, :]  # [B, 1, S]
        scores = tf.where(keep, scores, tf.cast(MASKED_SCORE, scores.dtype))
        return tf.nn.log_softmax(scores, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, score=self.score)
        return config


def soft_context(log_alignment: tf.Tensor, memory: tf.Tensor) -> tf.Tensor:
    """c_t = Σ_s α_ts m_s. log_alignment [B, T, S], memory [B, S, D] → [B, T, D] (in memory's
    dtype: a mixed-precision `Attention` returns float32 log-alignments over half-precision
    memory)."""
    return tf.einsum("bts,bsd->btd", tf.cast(tf.exp(log_alignment), memory.dtype), memory)
