"""Where an HMM's scores come from: free logits (Model 3) or networks over state embeddings.

Both layers map a batch of sentences x [B, T] to the logits of one chain (or of L chains),

    initial [..., K],   transition [..., K, K] or [B, T-1, K, K],   emission [..., K, V],

which `tflv.distributions.HMM` / `FactorialHMM` normalise with a softmax over the last axis:
π = softmax(initial), A[i] = softmax(transition[i]), E[k] = softmax(emission[k]).

* `HMMLogits`: free parameters (the HMM of Kim, Wiseman & Rush 2018, §5), K + K² + KV per
  chain, optionally for L chains at once (a factorial HMM). EM writes them directly.
* `NeuralHMMLogits` (Tran et al. 2016): each state k has an embedding s_k ∈ R^D and the scores
  are functions of the embeddings,

      emission[k, v]   = f_E(s_k) · w_v + b_v              (w_v: output word embeddings)
      transition[i, j] = f_A(s_i) · s'_j + c_j             (s'_j: next-state embeddings)
      initial[j]       = q_0 · s'_j + c_j                  (q_0: a learned start query)

  with f(s) = s + W_2 relu(W_1 s + b_1) + b_2 a residual MLP (`ResidualMLP`). With
  `transitions="lstm"` the transition out of position t also depends on the words read so far,
  h_t = LSTM(x_1..x_t), through the query: transition_t[i, j] = (f_A(s_i) + U h_t) · s'_j + c_j,
  for t = 1..T-1 (scoring z_t → z_{t+1}). Every row of A_t is still a distribution over the
  next state given x_{≤t}, so Σ_z p(x, z) remains the likelihood p(x) of a generative model.
  The LSTM is causal and padding only follows the real tokens, so no mask is needed: scores
  at padded steps are discarded by the chain's mask.

#### References

Kim, Y., Wiseman, S. & Rush, A. M. (2018). A tutorial on deep latent variable models of
natural language. arXiv:1812.06834.

Tran, K., Bisk, Y., Vaswani, A., Marcu, D. & Knight, K. (2016). Unsupervised neural hidden
Markov models. Workshop on Structured Prediction for NLP (arXiv:1609.09007).

He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep residual learning for image recognition.
CVPR (the residual block).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tflv.layers.lstm import LSTM

TRANSITIONS = ("mlp", "lstm")


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@keras.saving.register_keras_serializable(package="tflv")
class HMMLogits(keras.layers.Layer):
    """Free initial, transition and emission logits of one chain or of L chains.

    Args:
      num_states: K.
      vocab_size: V.
      num_chains: L > 0 gives the logits of L chains, shapes [L, K], [L, K, K], [L, K, V] (a
        factorial HMM); 0 gives one chain, [K], [K, K], [K, V].
      stddev: the logits start as N(0, stddev²) draws: random, so that EM can break the
        symmetry between states (a uniform start is a fixed point of EM).
      seed: initialiser seed.

    Call arguments:
      tokens: int [B, T] (unused: these logits are the same for every sentence).

    Returns:
      (initial [..., K], transition [..., K, K], emission [..., K, V]).
    """

    def __init__(self, num_states: int, vocab_size: int, num_chains: int = 0,
                 stddev: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _check_positive(num_states=num_states, vocab_size=vocab_size)
        if not isinstance(num_chains, int) or num_chains < 0:
            raise ValueError(f"num_chains must be an integer >= 0, got {num_chains!r}")
        self.num_states, self.vocab_size, self.num_chains = num_states, vocab_size, num_chains
        self.stddev, self.seed = stddev, seed
        chains = (num_chains,) if num_chains else ()
        shapes = {"initial": (*chains, num_states), "transition": (*chains, num_states, num_states),
                  "emission": (*chains, num_states, vocab_size)}
        # only_first_replica: EM assigns identical values on every replica (trainer hook).
        # Attributes, not a list: tf.train.Checkpoint does not see into Keras 3 lists.
        self.initial, self.transition, self.emission = (
            self.add_weight(shape=shape, name=f"{name}_logits",
                            initializer=keras.initializers.RandomNormal(
                                stddev=stddev, seed=None if seed is None else seed + i),
                            aggregation="only_first_replica")
            for i, (name, shape) in enumerate(shapes.items()))

    @property
    def logits(self) -> tuple:
        """The (initial, transition, emission) logit variables."""
        return self.initial, self.transition, self.emission

    def call(self, tokens):
        del tokens
        return tuple(tf.cast(v, self.compute_dtype) for v in self.logits)

    def assign(self, initial, transition, emission) -> None:
        """Overwrites the logits (e.g. with the log-probabilities of an M step)."""
        for variable, value in zip(self.logits, (initial, transition, emission)):
            variable.assign(value)

    def get_config(self):
        return {**super().get_config(), "num_states": self.num_states,
                "vocab_size": self.vocab_size, "num_chains": self.num_chains,
                "stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tflv")
class ResidualMLP(keras.layers.Layer):
    """f(s) = s + W_2 relu(W_1 s + b_1) + b_2: [..., D] -> [..., D] (He et al. 2016).

    Args:
      hidden_dim: width of the hidden layer.
    """

    def __init__(self, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        _check_positive(hidden_dim=hidden_dim)
        self.hidden_dim = hidden_dim
        self.hidden = keras.layers.Dense(hidden_dim, activation="relu", name="hidden",
                                         dtype=self.dtype_policy)  # computes in this layer's dtype
        self.out = None

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.out = keras.layers.Dense(input_shape[-1], name="out", dtype=self.dtype_policy)
        self.out.build((*input_shape[:-1], self.hidden_dim))

    def call(self, inputs):
        inputs = tf.cast(inputs, self.compute_dtype)  # the skip adds in it (mixed precision)
        return inputs + self.out(self.hidden(inputs))

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim}


@keras.saving.register_keras_serializable(package="tflv")
class NeuralHMMLogits(keras.layers.Layer):
    """HMM logits from state embeddings and residual MLPs, optionally an LSTM (module docstring).

    Args:
      num_states: K.
      vocab_size: V.
      embed_dim: D, the size of state and word embeddings.
      hidden_dim: the residual MLPs' hidden width and the LSTM's state size.
      transitions: "mlp" (one [K, K] matrix) or "lstm" (per position, from the words so far).

    Call arguments:
      tokens: int [B, T].

    Returns:
      (initial [K], transition [K, K] ("mlp") or [B, T-1, K, K] ("lstm"), emission [K, V]).
    """

    def __init__(self, num_states: int, vocab_size: int, embed_dim: int = 64,
                 hidden_dim: int = 128, transitions: str = "mlp", **kwargs):
        super().__init__(**kwargs)
        _check_positive(num_states=num_states, vocab_size=vocab_size, embed_dim=embed_dim,
                        hidden_dim=hidden_dim)
        if transitions not in TRANSITIONS:
            raise ValueError(f"transitions must be one of {TRANSITIONS}, got {transitions!r}")
        self.num_states, self.vocab_size = num_states, vocab_size
        self.embed_dim, self.hidden_dim, self.transitions = embed_dim, hidden_dim, transitions
        normal = keras.initializers.RandomNormal(stddev=embed_dim ** -0.5)
        self.states = self.add_weight(shape=(num_states, embed_dim), name="state_embeddings",
                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.next_states = self.add_weight(shape=(num_states, embed_dim), initializer=normal,
                                           name="next_state_embeddings")
        self.next_bias = self.add_weight(shape=(num_states,), initializer="zeros",
                                         name="next_state_bias")
        self.start = self.add_weight(shape=(embed_dim,), initializer=normal, name="start_query")
        self.words = self.add_weight(shape=(vocab_size, embed_dim), initializer=normal,
                                     name="output_word_embeddings")
        self.word_bias = self.add_weight(shape=(vocab_size,), initializer="zeros",
                                         name="output_word_bias")
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.emission_mlp = ResidualMLP(hidden_dim, name="emission_mlp", dtype=policy)
        self.transition_mlp = ResidualMLP(hidden_dim, name="transition_mlp", dtype=policy)
        self.emission_mlp.build((num_states, embed_dim))
        self.transition_mlp.build((num_states, embed_dim))
        if transitions == "lstm":
            self.embed = keras.layers.Embedding(vocab_size, embed_dim, name="input_embeddings",
                                                dtype=policy)
            self.lstm = LSTM(hidden_dim, return_sequences=True, name="lstm", dtype=policy)
            self.context = keras.layers.Dense(embed_dim, name="context", dtype=policy)

    def build(self, input_shape):  # tokens [B, T]
        if self.transitions == "lstm":
            self.embed.build(input_shape)
            self.lstm.build((*input_shape, self.embed_dim))
            self.context.build((*input_shape, self.hidden_dim))

    def call(self, tokens):
        states, next_states, next_bias, start, words, word_bias = (
            tf.cast(v, self.compute_dtype) for v in (  # float32 variables, read in compute dtype
                self.states, self.next_states, self.next_bias, self.start, self.words,
                self.word_bias))  # [K, D], [K, D], [K], [D], [V, D], [V]
        emission = tf.matmul(self.emission_mlp(states), words, transpose_b=True) + word_bias
        initial = tf.linalg.matvec(next_states, start) + next_bias  # [K]
        query = self.transition_mlp(states)  # [K, D]
        if self.transitions == "mlp":
            transition = tf.matmul(query, next_states, transpose_b=True) + next_bias  # [K, K]
            return initial, transition, emission
        # h_t reads x_{≤t}; the last position's state scores no transition.
        words_so_far = self.lstm(self.embed(tokens))[:, :-1]  # [B, T-1, H]
        queries = query + self.context(words_so_far)[:, :, None, :]  # [B, T-1, K, D]
        transition = tf.einsum("btkd,jd->btkj", queries, next_states) + next_bias
        return initial, transition, emission  # transition [B, T-1, K, K]

    def get_config(self):
        return {**super().get_config(), "num_states": self.num_states,
                "vocab_size": self.vocab_size, "embed_dim": self.embed_dim,
                "hidden_dim": self.hidden_dim, "transitions": self.transitions}
