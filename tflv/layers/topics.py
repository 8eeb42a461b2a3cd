"""The neural topic models' layers: the topic-word decoder and the batch-normalised Gaussian head.

`TopicDecoder` maps a document representation θ `[B, K]` to log p(w | θ) `[B, V]`, either
log-linear, log softmax(θᵀR + b) (NVDM, ProdLDA; Miao et al. 2016, Srivastava & Sutton 2017),
or a mixture of topics, log Σ_k θ_k softmax(T_k) (GSM; Miao et al. 2017), with the topic logits
optionally factored through topic and word embeddings, T = t vᵀ. `NormalizedGaussianHead` is
ProdLDA's encoder head: the posterior's mean and log variance batch-normalised without a scale.
`tflv.models.topic_models` builds NVDM, GSM and ProdLDA from them.

#### References
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing.
- Miao, Grefenstette & Blunsom (2017). Discovering Discrete Latent Topics with Neural
  Variational Inference.
- Srivastava & Sutton (2017). Autoencoding Variational Inference for Topic Models.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from tflv.layers.precision import full_precision


INITIALIZERS = ("glorot", "torch")


def linear_initializers(initializer: str, fan_in: int) -> dict:
    """`kernel_initializer` and `bias_initializer` of a linear map with `fan_in` inputs:
    `"glorot"` (Keras' defaults: Glorot-uniform weights, zero bias) or `"torch"` (PyTorch's
    `nn.Linear`, as Pyro's ProdLDA: Kaiming-uniform weights with a = √5 and a uniform bias, both
    U(−1/√fan_in, 1/√fan_in))."""
    if initializer == "glorot":
        return {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
    if initializer != "torch":
        raise ValueError(f"unknown initializer {initializer!r}; valid: {', '.join(INITIALIZERS)}")
    bound = 1.0 / math.sqrt(fan_in)  # gain √(2 / (1 + 5)) × √(3 / fan_in)
    return {"kernel_initializer": keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in",
                                                                     "uniform"),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound)}


@keras.saving.register_keras_serializable(package="tflv")
class TopicDecoder(keras.layers.Layer):
    """Document representation θ `(batch_size, num_topics)` → log p(w | θ) `(batch_size, vocab)`.

    Args:
      vocab_size: V.
      mixture: False: the log-linear decoder log softmax(θᵀR + b) (NVDM's, ProdLDA's); True:
        the mixture log Σ_k θ_k softmax(T_k) (GSM's; θ must lie on the simplex).
      embed_dim: H: factor the topic logits (T or R) = t vᵀ through topic embeddings t `[K, H]`
        and word embeddings v `[H, V]` (stored transposed). None: they are free.
      batch_norm: log-linear decoder only: log softmax(BN(θᵀR)), the logits batch-normalised
        per word without a scale, their learned shift standing for the bias b (Srivastava &
        Sutton 2017's ProdLDA; BN's running moments at evaluation). Pyro's tutorial drops the
        shift too; on 20news_prodlda that halved the NPMI and raised the per-document
        perplexity from 1062 to 2491 (BENCHMARKS.md).
      bn_epsilon, bn_momentum: that BatchNormalization's ε and running-moment decay.
      initializer: free log-linear R and b: `"glorot"` (Glorot-uniform R, zero b) or `"torch"`
        (PyTorch's `nn.Linear(K, V)`: both U(±1/√K); `linear_initializers`).

    The mixture's logits start as N(0, 1), and factored logits of either decoder as t ~ N(0, 1),
    v ~ N(0, 1/H), so that the topics differ from the first step: from Glorot's small logits
    every topic is nearly uniform, z barely matters and the posterior collapses towards the
    prior (GSM, 20news, 50 topics, 5,000 steps: test perplexity 1165 with KL 1.6 nats, against
    1087 with KL 4.0; GSM with a free log-linear R: KL 2.3 nats after 20,000 steps).
    """

    def __init__(self, vocab_size: int, mixture: bool = False, embed_dim: int | None = None,
                 batch_norm: bool = False, bn_epsilon: float = 1e-3, bn_momentum: float = 0.99,
                 initializer: str = "glorot", **kwargs):
        super().__init__(**kwargs)
        if initializer not in INITIALIZERS:
            raise ValueError(f"unknown initializer {initializer!r}; valid: "
                             f"{', '.join(INITIALIZERS)}")
        if batch_norm and mixture:
            raise ValueError("batch_norm normalises the log-linear decoder's logits; the mixture "
                             "decoder has none")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if embed_dim is not None and embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1 (or None: free topic logits), got "
                             f"{embed_dim}")
        self.vocab_size, self.mixture, self.embed_dim = vocab_size, mixture, embed_dim
        self.batch_norm, self.initializer = batch_norm, initializer
        self.bn_epsilon, self.bn_momentum = bn_epsilon, bn_momentum
        self.logit_norm = keras.layers.BatchNormalization(  # computes in this layer's dtype
            scale=False, epsilon=bn_epsilon, momentum=bn_momentum, name="logit_norm",
            dtype=self.dtype_policy) if batch_norm else None

    def build(self, input_shape):
        num_topics = input_shape[-1]
        normal = lambda stddev: keras.initializers.RandomNormal(stddev=stddev)
        linear = linear_initializers(self.initializer, num_topics)
        if self.embed_dim:
            self.topic_embedding = self.add_weight(
                name="topic_embedding", shape=(num_topics, self.embed_dim),
                initializer=normal(1.0))  # t [K, H]
            self.word_embedding = self.add_weight(
                name="word_embedding", shape=(self.embed_dim, self.vocab_size),
                initializer=normal(self.embed_dim ** -0.5))  # vᵀ [H, V]
        else:
            self.topic_word = self.add_weight(
                name="topic_word", shape=(num_topics, self.vocab_size),
                initializer=normal(1.0) if self.mixture
                else linear["kernel_initializer"])  # [K, V]
        self.bias = None if self.mixture or self.batch_norm else self.add_weight(
            name="bias", shape=(self.vocab_size,), initializer=linear["bias_initializer"])  # [V]
        if self.batch_norm:
            self.logit_norm.build((None, self.vocab_size))
        self.built = True

    def topic_logits(self) -> tf.Tensor:
        """R (log-linear) or T (mixture, β = softmax(T)): `[K, V]`."""
        if self.embed_dim:
            return tf.matmul(self.topic_embedding, self.word_embedding)
        return tf.convert_to_tensor(self.topic_word)

    def _topic_logits(self) -> tf.Tensor:
        return tf.cast(self.topic_logits(), self.compute_dtype)  # [K, V], in compute dtype

    def call(self, theta, training=False):
        # The softmaxes and the log in float32 (and so the output) whatever the compute dtype:
        # under a mixed-precision policy only the θᵀR product is half precision.
        if self.mixture:
            beta = tf.nn.softmax(full_precision(self._topic_logits()), axis=-1)  # [K, V]
            return tf.math.log(tf.matmul(full_precision(theta), beta) + 1e-30)  # [B, V]
        logits = tf.matmul(theta, self._topic_logits())  # [..., V]
        if self.batch_norm:  # moments over every leading position (samples and documents)
            flat = self.logit_norm(tf.reshape(logits, [-1, self.vocab_size]), training=training)
            return tf.nn.log_softmax(full_precision(tf.reshape(flat, tf.shape(logits))), axis=-1)
        return tf.nn.log_softmax(full_precision(logits + tf.cast(self.bias, self.compute_dtype)),
                                 axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, mixture=self.mixture,
                      embed_dim=self.embed_dim, batch_norm=self.batch_norm,
                      bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum,
                      initializer=self.initializer)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class NormalizedGaussianHead(keras.layers.Layer):
    """features `(batch_size, features)` → (loc, scale), each `(batch_size, latent_dim)`, with
    loc = BN(W_μ h) and log scale² = BN(W_σ h), each batch-normalised without a scale
    (Srivastava & Sutton 2017's ProdLDA encoder; Pyro's tutorial calls it the remedy for
    component collapse: no latent dimension's mean or variance can stay fixed across documents).

    Args:
      latent_dim: K.
      bn_epsilon, bn_momentum: the BatchNormalizations' ε and running-moment decay.
      initializer: the linear map's (`linear_initializers`: `"glorot"` or `"torch"`).

    In training the batch's posterior means have mean 0 and variance 1 in every dimension:

    >>> import tensorflow as tf
    >>> features = tf.random.stateless_normal([64, 10], seed=[1, 2])
    >>> loc, scale = NormalizedGaussianHead(5)(features, training=True)   # [64, 5] each
    >>> mean, variance = tf.nn.moments(loc, axes=[0])
    >>> print(float(tf.reduce_max(tf.abs(mean))) < 1e-4,
    ...       float(tf.reduce_max(tf.abs(variance - 1))) < 1e-2)
    True True
    """

    def __init__(self, latent_dim: int, bn_epsilon: float = 1e-3, bn_momentum: float = 0.99,
                 initializer: str = "glorot", **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.initializer = latent_dim, initializer
        self.bn_epsilon, self.bn_momentum = bn_epsilon, bn_momentum
        if initializer not in INITIALIZERS:
            raise ValueError(f"unknown initializer {initializer!r}; valid: "
                             f"{', '.join(INITIALIZERS)}")
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.dense = keras.layers.Dense(2 * latent_dim, name="dense", dtype=policy)
        norm = lambda name: keras.layers.BatchNormalization(
            scale=False, epsilon=bn_epsilon, momentum=bn_momentum, name=name, dtype=policy)
        self.loc_norm, self.log_variance_norm = norm("loc_norm"), norm("log_variance_norm")

    def build(self, input_shape):
        if self.initializer != "glorot":  # as torch's two nn.Linear h → μ, h → log σ²
            for key, value in linear_initializers(self.initializer, input_shape[-1]).items():
                setattr(self.dense, key, keras.initializers.get(value))
        self.dense.build(input_shape)
        self.loc_norm.build((None, self.latent_dim))
        self.log_variance_norm.build((None, self.latent_dim))
        self.built = True

    def call(self, features, training=False):
        loc, log_variance = tf.split(self.dense(features), 2, axis=-1)  # [B, K] each
        loc = self.loc_norm(loc, training=training)
        log_variance = self.log_variance_norm(log_variance, training=training)
        return loc, tf.exp(0.5 * log_variance)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, bn_epsilon=self.bn_epsilon,
                      bn_momentum=self.bn_momentum, initializer=self.initializer)
        return config
