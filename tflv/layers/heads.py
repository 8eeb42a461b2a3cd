"""Heads: features → the parameters of a variational distribution (tensors, Keras 3).

Each head returns tensors; the module functions build the TFP distribution from them outside
`call` (Keras 3 layers cannot return distributions):

- `GaussianHead`: (μ, σ) with σ = softplus(·) + ε; `gaussian(params)` = N(μ, diag σ²)
  (Kingma & Welling 2014).
- `VMFHead`: a unit mean direction μ = v / ||v||; `von_mises_fisher(μ, κ)` is vMF(μ, κ) with a
  fixed concentration κ (Xu & Durrett 2018), whose samples are reparameterized in μ.
- `CategoricalHead`: logits of a categorical latent.
- `BaselineHead`: a learned, input-dependent baseline b(x) for the score-function estimator
  (Mnih & Gregor 2014), fitted by `tflv.vi.estimators.score_function`.
- `AutoregressiveNetwork`: MADE (Germain et al. 2015), the masked network giving
  (shift_i, log_scale_i) as functions of z_{<i} (and a context h), for MAF / IAF flows
  (Papamakarios et al. 2017; Kingma et al. 2016) through `tflv.vi.flows.autoregressive_flow`.
- `PlanarFlowHead`: per-example parameters (u, w, b) of L planar flows
  f(z) = z + u tanh(wᵀz + b) (Rezende & Mohamed 2015), see `tflv.vi.flows.planar_flow`.

#### References
- Kingma & Welling (2014). Auto-Encoding Variational Bayes.
- Xu & Durrett (2018). Spherical Latent Spaces for Stable Variational Autoencoders.
- Mnih & Gregor (2014). Neural Variational Inference and Learning in Belief Networks.
- Germain, Gregor, Murray & Larochelle (2015). MADE: Masked Autoencoder for Distribution
  Estimation.
- Papamakarios, Pavlakou & Murray (2017). Masked Autoregressive Flow for Density Estimation.
- Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016). Improved Variational Inference
  with Inverse Autoregressive Flow.
- Rezende & Mohamed (2015). Variational Inference with Normalizing Flows.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.distributions.vmf import VonMisesFisherFixedConcentration

tfd = tfp.distributions

_MIN_SCALE = 1e-4


@keras.saving.register_keras_serializable(package="tflv")
class GaussianHead(keras.layers.Layer):
    """features `(batch_size, features)` → (loc, scale), each `(batch_size, latent_dim)`.

    Args:
      latent_dim: D.

    Examples:
    >>> loc, scale = GaussianHead(16)(tf.ones([4, 8]))  # (4, 16) each, scale > 0
    >>> q = gaussian((loc, scale))                      # MultivariateNormalDiag
    >>> q.batch_shape, q.event_shape
    (TensorShape([4]), TensorShape([16]))
    """

    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.latent_dim = latent_dim
        self.dense = keras.layers.Dense(2 * latent_dim, dtype=policy, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, features):
        loc, pre_scale = tf.split(self.dense(features), 2, axis=-1)  # [B, D] each
        return loc, tf.nn.softplus(pre_scale) + _MIN_SCALE

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim)
        return config


def gaussian(params: tuple[tf.Tensor, tf.Tensor]) -> tfd.MultivariateNormalDiag:
    """(loc `[B, D]`, scale `[B, D]`) → N(loc, diag scale²), batch `[B]`, event `[D]`."""
    loc, scale = params
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)


@keras.saving.register_keras_serializable(package="tflv")
class VMFHead(keras.layers.Layer):
    """features `(batch_size, features)` → unit mean direction `(batch_size, latent_dim)`.

    Args:
      latent_dim: D ≥ 2 (the sphere S^{D−1} in R^D).
      concentration: the fixed κ > 0 that `von_mises_fisher` uses with this head.
    """

    def __init__(self, latent_dim: int, concentration: float, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        if latent_dim < 2:
            raise ValueError(f"latent_dim must be >= 2 for a sphere, got {latent_dim}")
        if concentration <= 0:
            raise ValueError(f"concentration must be > 0, got {concentration}")
        self.latent_dim = latent_dim
        self.concentration = concentration
        self.dense = keras.layers.Dense(latent_dim, dtype=policy, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, features):
        return tf.math.l2_normalize(self.dense(features), axis=-1)  # [B, D]

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, concentration=self.concentration)
        return config


def von_mises_fisher(mean_direction: tf.Tensor, concentration: float
                     ) -> VonMisesFisherFixedConcentration:
    """mean direction `[B, D]` (unit) → vMF(μ, κ) with fixed κ, reparameterized in μ."""
    return VonMisesFisherFixedConcentration(mean_direction, concentration)


@keras.saving.register_keras_serializable(package="tflv")
class CategoricalHead(keras.layers.Layer):
    """features `(batch_size, features)` → logits `(batch_size, num_classes)`."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.num_classes = num_classes
        self.dense = keras.layers.Dense(num_classes, dtype=policy, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, features):
        return self.dense(features)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class BaselineHead(keras.layers.Layer):
    """features `(batch_size, features)` → baseline b(x) `(batch_size,)` (an MLP, linear output).

    Args:
      hidden_units: widths of the tanh hidden layers (may be empty: a linear baseline).
    """

    def __init__(self, hidden_units: Sequence[int] = (), **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.hidden_units = list(hidden_units)
        self.hidden = [keras.layers.Dense(h, activation="tanh", dtype=policy,
                                          name=f"hidden_{i}")
                       for i, h in enumerate(self.hidden_units)]
        self.out = keras.layers.Dense(1, dtype=policy, name="out")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.out.build(shape)
        self.built = True

    def call(self, features):
        h = features
        for layer in self.hidden:
            h = layer(h)
        return tf.squeeze(self.out(h), axis=-1)  # [B]

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units)
        return config


def _made_masks(event_size: int, hidden_units: Sequence[int]) -> list[np.ndarray]:
    """MADE connectivity masks (Germain et al. 2015), left-to-right order.

    Input i (degree i, 1-based) may feed a hidden unit of degree m iff m ≥ i; hidden degrees cycle
    through 1 … D−1; output i may read a unit of degree m iff i > m, so output i sees z_{<i} only.
    Returns [mask `[D, H1]`, `[H1, H2]`, …, `[H_L, D]`] as float32 0/1 arrays.
    """
    degrees = [np.arange(1, event_size + 1)]
    for units in hidden_units:
        degrees.append(np.arange(units) % max(event_size - 1, 1) + min(event_size - 1, 1))
    masks = [(d_out[None, :] >= d_in[:, None]).astype(np.float32)
             for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    masks.append((np.arange(1, event_size + 1)[None, :] > degrees[-1][:, None])
                 .astype(np.float32))
    return masks


@keras.saving.register_keras_serializable(package="tflv")
class AutoregressiveNetwork(keras.layers.Layer):
    """MADE: z `(..., event_size)` [, context `(..., context_size)`] → `(..., event_size, 2)`.

    Output `[..., i, :]` = (shift_i, log_scale_i) depends on z_{<i} (and the context) only, the
    contract of `tfb.MaskedAutoregressiveFlow`'s `shift_and_log_scale_fn`. The context (e.g. the
    encoder's features h, as in IAF) feeds every hidden layer unmasked.

    Args:
      event_size: D.
      hidden_units: widths of the masked hidden layers (each ≥ D − 1 so every input is used).
      activation: hidden activation.
      conditional: whether a context is passed (then call with `(z, context)`).

    Call arguments:
      inputs: z, or the pair `(z, context)` when `conditional`.
    """

    def __init__(self, event_size: int, hidden_units: Sequence[int] = (32,),
                 activation: str = "relu", conditional: bool = False, **kwargs):
        super().__init__(**kwargs)
        if event_size < 1:
            raise ValueError(f"event_size must be >= 1, got {event_size}")
        self.event_size = event_size
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.conditional = conditional
        self._masks = _made_masks(event_size, self.hidden_units)
        self._activation_fn = keras.activations.get(activation)

    def build(self, input_shape):
        if self.conditional:
            z_shape, context_shape = input_shape
        else:
            z_shape = input_shape
        if z_shape[-1] != self.event_size:
            raise ValueError(f"AutoregressiveNetwork expects z with last dimension "
                             f"{self.event_size}, got shape {tuple(z_shape)}")
        self.kernels, self.biases, self.context_kernels = [], [], []
        for i, mask in enumerate(self._masks):
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=mask.shape,
                                                initializer="glorot_uniform"))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=mask.shape[1:],
                                               initializer="zeros"))
        self.out_kernel_log_scale = self.add_weight(
            name="kernel_log_scale", shape=self._masks[-1].shape, initializer="glorot_uniform")
        self.out_bias_log_scale = self.add_weight(name="bias_log_scale", shape=(self.event_size,),
                                                  initializer="zeros")
        if self.conditional:
            for i, units in enumerate(self.hidden_units):
                self.context_kernels.append(self.add_weight(
                    name=f"context_kernel_{i}", shape=(context_shape[-1], units),
                    initializer="glorot_uniform"))
        self.built = True

    def call(self, inputs):
        z, context = inputs if self.conditional else (inputs, None)
        dtype = self.compute_dtype  # weights are float32 variables; masks are NumPy arrays

        def masked(kernel, mask):
            return tf.cast(kernel, dtype) * tf.constant(mask, dtype)

        h = tf.cast(z, dtype)  # [..., D]
        for i in range(len(self.hidden_units)):
            h = tf.matmul(h, masked(self.kernels[i], self._masks[i])) + \
                tf.cast(self.biases[i], dtype)  # [..., H_i]
            if context is not None:
                h = h + tf.matmul(tf.cast(context, dtype), tf.cast(self.context_kernels[i], dtype))
            h = self._activation_fn(h)
        shift = tf.matmul(h, masked(self.kernels[-1], self._masks[-1])) + \
            tf.cast(self.biases[-1], dtype)  # [..., D]
        log_scale = tf.matmul(h, masked(self.out_kernel_log_scale, self._masks[-1])) + \
            tf.cast(self.out_bias_log_scale, dtype)
        return tf.stack([shift, log_scale], axis=-1)  # [..., D, 2]

    def get_config(self):
        config = super().get_config()
        config.update(event_size=self.event_size, hidden_units=self.hidden_units,
                      activation=self.activation, conditional=self.conditional)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class PlanarFlowHead(keras.layers.Layer):
    """features `(batch_size, features)` → (u, w, b): `(B, L, D)`, `(B, L, D)`, `(B, L)`.

    Args:
      latent_dim: D.
      num_flows: L.
    """

    def __init__(self, latent_dim: int, num_flows: int, **kwargs):
        super().__init__(**kwargs)
        if num_flows < 1:
            raise ValueError(f"num_flows must be >= 1, got {num_flows}")
        self.latent_dim = latent_dim
        self.num_flows = num_flows
        self.dense = keras.layers.Dense(num_flows * (2 * latent_dim + 1), dtype=self.dtype_policy,
                                        name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, features):
        params = tf.reshape(self.dense(features),
                            [-1, self.num_flows, 2 * self.latent_dim + 1])  # [B, L, 2D + 1]
        u, w, b = tf.split(params, [self.latent_dim, self.latent_dim, 1], axis=-1)
        return u, w, tf.squeeze(b, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, num_flows=self.num_flows)
        return config
