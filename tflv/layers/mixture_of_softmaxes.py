"""Mixture of softmaxes: the next word's distribution as a mixture over a per-token latent expert.

With a decoder state g_t and a categorical latent z_t ∈ {1..K} (Yang et al. 2018),

    p(z_t = k | g_t)       = π_tk = softmax_k(w_k^T g_t),
    p(x_t | z_t = k, g_t)  = softmax(W h_tk + b),   h_tk = tanh(P_k g_t + c_k),
    p(x_t | g_t)           = Σ_k π_tk softmax(W h_tk + b)[x_t],

summed out exactly (log-sum-exp over k). The log-probability matrix of a single softmax has rank at
most d + 1 (the "softmax bottleneck"); the mixture's is not bounded so, which is the point of the
model. `MixtureOfSoftmaxes` returns log-probabilities, which are valid logits (softmax(log p) = p),
so it replaces a decoder's output projection; `MoSDecoder` is `RNNDecoder` with that replacement.

#### References
- Yang, Dai, Salakhutdinov & Cohen (2018). Breaking the Softmax Bottleneck: A High-Rank RNN
  Language Model. ICLR.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tflv.layers.decoders import RNNDecoder


@keras.saving.register_keras_serializable(package="tflv")
class MixtureOfSoftmaxes(keras.layers.Layer):
    """Features `(..., H)` → log p `(..., V)`, a mixture of K softmaxes.

    Args:
      vocab_size: V.
      num_softmaxes: K ≥ 1.
      latent_dim: width d of each h_tk (default: the input width H).

    Call arguments:
      inputs: float `(..., H)` decoder states g_t.
      return_components: also return log π `(..., K)` and the per-component log-probabilities
        `(..., K, V)`.

    Returns:
      log p `(..., V)` (normalised), or `(log_p, log_prior, component_log_probs)`.

    Examples:
    >>> mos = MixtureOfSoftmaxes(vocab_size=10, num_softmaxes=3)
    >>> log_p = mos(tf.random.normal([2, 4, 8]))  # (2, 4, 10)
    >>> print(tf.reduce_sum(tf.exp(log_p), -1).numpy().round(5))   # a distribution over V
    [[1. 1. 1. 1.]
     [1. 1. 1. 1.]]
    """

    def __init__(self, vocab_size: int, num_softmaxes: int = 5, latent_dim: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        if num_softmaxes < 1:
            raise ValueError(f"num_softmaxes must be >= 1, got {num_softmaxes}")
        self.vocab_size, self.num_softmaxes, self.latent_dim = vocab_size, num_softmaxes, latent_dim
        self.supports_masking = True  # per position: a mask passes through unchanged
        self.prior = keras.layers.Dense(num_softmaxes, dtype=policy, name="prior")
        self.projection = keras.layers.Dense(vocab_size, dtype=policy, name="projection")

    def build(self, input_shape):
        d = self.latent_dim or input_shape[-1]
        self.prior.build(input_shape)
        self.latent = keras.layers.Dense(self.num_softmaxes * d, activation="tanh",
                                         dtype=self.dtype_policy, name="latent")
        self.latent.build(input_shape)
        self.projection.build(tuple(input_shape[:-1]) + (self.num_softmaxes, d))
        self.built = True

    def call(self, inputs, return_components: bool = False):
        # The softmaxes and their logsumexp in float32 under a mixed-precision policy (the
        # output is float32 then).
        full = lambda x: tf.cast(x, tf.float32) if x.dtype.size < 4 else x
        log_prior = tf.nn.log_softmax(full(self.prior(inputs)))  # [..., K]
        h = self.latent(inputs)  # [..., K*d]
        h = tf.reshape(h, tf.concat([tf.shape(h)[:-1], [self.num_softmaxes, -1]], 0))  # [..., K, d]
        component = tf.nn.log_softmax(full(self.projection(h)))  # [..., K, V]
        log_p = tf.reduce_logsumexp(log_prior[..., None] + component, axis=-2)  # [..., V]
        return (log_p, log_prior, component) if return_components else log_p

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, num_softmaxes=self.num_softmaxes,
                      latent_dim=self.latent_dim)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class MoSDecoder(RNNDecoder):
    """`RNNDecoder` whose output layer is a `MixtureOfSoftmaxes`; returns log-probabilities.

    Args:
      num_softmaxes: K.
      other arguments: as `RNNDecoder` (tied input and output embeddings are not supported).
    """

    def __init__(self, vocab_size: int, num_softmaxes: int = 5, **kwargs):
        if kwargs.get("tie_embeddings"):
            raise ValueError("MoSDecoder does not support tie_embeddings")
        super().__init__(vocab_size, **kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.num_softmaxes = num_softmaxes
        # Replaces RNNDecoder's Dense projection, which stays unbuilt and holds no weights.
        self.projection = MixtureOfSoftmaxes(vocab_size, num_softmaxes,
                                             dtype=policy,
                                             name="mixture_of_softmaxes")

    def get_config(self):
        return {**super().get_config(), "num_softmaxes": self.num_softmaxes}
