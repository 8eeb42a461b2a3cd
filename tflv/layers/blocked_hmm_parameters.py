"""Neural parameters of a blocked-emission HMM language model, with state dropout.

The parameterisation of Chiu & Rush (2020, §4): every state k has an embedding s_k ∈ R^D and a
next-state embedding s'_k, every word w an embedding u_w, and

    initial[j]       = log_softmax_j ( q_0 · s'_j )
    transition[i, j] = log_softmax_j ( f_A(s_i) · s'_j )                 (over all kept states)
    emission[k, w]   = log_softmax_{w ∈ words(b(k))} ( f_E(s_k) · u_w + c_w )

with f(s) = s + W_2 relu(W_1 s + b_1) + b_2 a residual MLP (`ResidualMLP`). The emission of
state k is normalised over the words of its own block only (blocked emissions: a state gives
probability 0 to every other word), so `emission` is [M, S, W] — block b's S states over its W
word slots (`WordBlocks.block_words`, padding slots get -inf) — never [K, V]. Parameters:
(2K + V) D + 2 (D H + H + D) + D + V, which grows with D, not with K².

State dropout (Chiu & Rush 2020, §4): for a training batch, each block keeps a uniformly random
subset of n = S - round(rate · S) of its S states (every state is kept with probability n / S;
every block keeps exactly n, so the chain stays blocked with n states a block and K' = M n
states in all). The dropped states are removed from the chain and the partition is
renormalised over the kept states: initial and every transition row are softmaxes over the K'
kept states; emission rows are unchanged (each is already a distribution over its block's
words). The batch is then the exact log-likelihood of a smaller HMM, at (1 - rate)² of the
transition cost. Evaluation uses all states (`kept=None`).

#### Example

```python
blocks = tflv.distributions.WordBlocks.by_frequency(counts, num_blocks=32)
layer = BlockedNeuralHMM(num_states=1024, word_blocks=blocks.block_of.tolist(),
                         num_blocks=32, embed_dim=128)
kept = layer.keep_states(rate=0.5, seed=(0, step))           # [M, n]
log_px = layer.log_prob(x, mask, kept)                       # [B], exact, of the kept-state HMM
```

#### References

Chiu, J. T. & Rush, A. M. (2020). Scaling hidden Markov language models. EMNLP
(arXiv:2011.04640).

Tran, K., Bisk, Y., Vaswani, A., Marcu, D. & Knight, K. (2016). Unsupervised neural hidden
Markov models. Workshop on Structured Prediction for NLP.
"""
from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tflv.distributions.blocked_hmm import BlockedHMM, WordBlocks
from tflv.layers.hmm_parameterizations import ResidualMLP
from tflv.layers.precision import full_precision


class BlockedParameters(NamedTuple):
    """Log-probabilities of one blocked HMM: initial [K'], transition [K', K'], emission
    [M, n, W], and the global ids of its states, kept [M, n]."""

    initial: tf.Tensor
    transition: tf.Tensor
    emission: tf.Tensor
    kept: tf.Tensor


def kept_count(block_size: int, rate: float) -> int:
    """n = S - round(rate · S) states kept per block; at least one."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"state dropout rate must be in [0, 1), got {rate!r}")
    return max(1, block_size - int(round(rate * block_size)))


@keras.saving.register_keras_serializable(package="tflv")
class BlockedNeuralHMM(keras.layers.Layer):
    """Neural initial, transition and blocked emission log-probs (module docstring).

    Args:
      num_states: K, a multiple of num_blocks.
      word_blocks: the block of every word id, a list [V] (e.g. `WordBlocks.by_frequency`).
      num_blocks: M.
      embed_dim: D, the size of the state and word embeddings.
      hidden_dim: width of the residual MLPs' hidden layer (default D).
    """

    def __init__(self, num_states: int, word_blocks, num_blocks: int, embed_dim: int = 64,
                 hidden_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_states", num_states), ("embed_dim", embed_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(num_blocks, int) or num_blocks < 1 or num_states % num_blocks:
            raise ValueError(f"num_blocks must be a positive divisor of num_states="
                             f"{num_states}, got {num_blocks!r}")
        self.blocks = WordBlocks(np.asarray(word_blocks, np.int64), num_blocks)
        self.num_states, self.num_blocks, self.embed_dim = num_states, num_blocks, embed_dim
        self.block_size = num_states // num_blocks
        self.hidden_dim = hidden_dim or embed_dim
        self.word_blocks = [int(b) for b in self.blocks.block_of]
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.transition_mlp = ResidualMLP(self.hidden_dim, name="transition_mlp", dtype=policy)
        self.emission_mlp = ResidualMLP(self.hidden_dim, name="emission_mlp", dtype=policy)

    def build(self, input_shape=None):
        k, v, d = self.num_states, self.blocks.vocab_size, self.embed_dim
        init = keras.initializers.RandomNormal(stddev=d ** -0.5)
        self.state_embeddings = self.add_weight(shape=(k, d), initializer=init,
                                                name="state_embeddings")
        self.next_state_embeddings = self.add_weight(shape=(k, d), initializer=init,
                                                     name="next_state_embeddings")
        self.word_embeddings = self.add_weight(shape=(v, d), initializer=init,
                                               name="word_embeddings")
        self.word_bias = self.add_weight(shape=(v,), initializer="zeros", name="word_bias")
        self.start_query = self.add_weight(shape=(d,), initializer=init, name="start_query")
        self.transition_mlp.build((None, d))
        self.emission_mlp.build((None, d))
        self.built = True

    def keep_states(self, rate: float, seed) -> tf.Tensor:
        """Global ids [M, n] of the states kept by state dropout (sorted within each block):
        a uniform n-subset of each block's S states, from a stateless seed (module docstring)."""
        n = kept_count(self.block_size, rate)
        scores = tf.random.stateless_uniform([self.num_blocks, self.block_size], seed)
        local = tf.sort(tf.math.top_k(scores, n, sorted=False).indices, -1)
        return local + (tf.range(self.num_blocks) * self.block_size)[:, None]

    def all_states(self) -> tf.Tensor:
        return tf.reshape(tf.range(self.num_states), [self.num_blocks, self.block_size])

    def call(self, kept=None) -> BlockedParameters:
        """The log-probs of the HMM over the kept states [M, n] (all states if None)."""
        if not self.built:
            self.build()
        kept = self.all_states() if kept is None else tf.convert_to_tensor(kept, tf.int32)
        m, n = self.num_blocks, kept.shape[1] or tf.shape(kept)[1]
        flat = tf.reshape(kept, [-1])
        dtype = self.compute_dtype  # float32 variables, read in compute dtype
        states = tf.cast(tf.gather(self.state_embeddings, flat), dtype)  # [K', D]
        nxt = tf.cast(tf.gather(self.next_state_embeddings, flat), dtype)
        # The log-softmaxes (and the recursion after them) in float32 under mixed precision.
        initial = tf.nn.log_softmax(full_precision(
            tf.linalg.matvec(nxt, tf.cast(self.start_query, dtype))))
        transition = tf.nn.log_softmax(full_precision(tf.matmul(
            self.transition_mlp(states), nxt, transpose_b=True)))
        words = self.blocks.block_words  # [M, W], -1 padding
        real = tf.constant(words >= 0)
        ids = tf.constant(np.maximum(words, 0))
        queries = tf.reshape(self.emission_mlp(states), [m, n, self.embed_dim])
        logits = full_precision(
            tf.einsum("mnd,mwd->mnw", queries, tf.cast(tf.gather(self.word_embeddings, ids), dtype))
            + tf.cast(tf.gather(self.word_bias, ids), dtype)[:, None, :])
        logits = tf.where(real[:, None, :], logits, tf.constant(-np.inf, logits.dtype))
        return BlockedParameters(initial, transition, tf.nn.log_softmax(logits), kept)

    def hmm(self, params: BlockedParameters) -> BlockedHMM:
        return BlockedHMM(params.initial, params.transition, self.num_blocks)

    def log_prob(self, x, mask=None, kept=None) -> tf.Tensor:
        """Exact log p(x) [B] of x [B, T] under the HMM over the kept states (all if None)."""
        params = self(kept)
        scores, blocks = self.blocks.token_scores(params.emission, x, mask)
        return self.hmm(params).log_prob(scores, blocks, mask)

    def get_config(self):
        return {**super().get_config(), "num_states": self.num_states,
                "word_blocks": self.word_blocks, "num_blocks": self.num_blocks,
                "embed_dim": self.embed_dim, "hidden_dim": self.hidden_dim}
