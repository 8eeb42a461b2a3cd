"""Normalizing flows on the variational posterior, as `tfp.bijectors`.

A flow pushes z_0 ~ q_0(z | x) through invertible maps f_1 … f_L; by the change of variables

    log q_L(z_L) = log q_0(z_0) − Σ_l log |det ∂f_l / ∂z_{l−1}|,

and `tfd.TransformedDistribution(q_0, bijector)` computes it (use
`experimental_sample_and_log_prob`, which needs no inverse).

- Autoregressive affine flows: y_i = x_i exp(s_i) + m_i with (m_i, s_i) = MADE(·)_{<i}.
  MAF (Papamakarios et al. 2017) conditions on the outputs y_{<i} (density evaluation in one
  pass, sampling sequential); IAF (Kingma et al. 2016) is its inverse, conditioning on the inputs
  (sampling in one pass, which is what a posterior needs). Both are `tfb.MaskedAutoregressiveFlow`
  around `tflv.layers.AutoregressiveNetwork`; IAF is `tfb.Invert` of it. The network may take a
  context (the encoder's features h), as in Kingma et al. (2016).
- Planar flows (Rezende & Mohamed 2015): f(z) = z + û tanh(wᵀz + b), with
  log |det ∂f/∂z| = log |1 + (1 − tanh²(wᵀz + b)) ûᵀw| and
  û = u + (m(wᵀu) − wᵀu) w / ||w||², m(a) = −1 + softplus(a), so that ûᵀw ≥ −1 and f is
  invertible (their Appendix A). The inverse has no closed form; sampling and
  `experimental_sample_and_log_prob` only need the forward map.

#### References
- Rezende & Mohamed (2015). Variational Inference with Normalizing Flows.
- Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016). Improved Variational Inference
  with Inverse Autoregressive Flow.
- Papamakarios, Pavlakou & Murray (2017). Masked Autoregressive Flow for Density Estimation.
"""
from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


def autoregressive_flow(network: keras.layers.Layer, context: tf.Tensor | None = None,
                        inverse: bool = False) -> tfb.Bijector:
    """MAF (`inverse=False`) or IAF (`inverse=True`) around a MADE network.

    Args:
      network: a `tflv.layers.AutoregressiveNetwork` (z `[..., D]` → `[..., D, 2]`), built with
        `conditional=True` iff a context is given.
      context: optional `[B, C]` features; broadcast against samples `[S, B, D]`.
      inverse: return the inverse autoregressive flow.

    Returns:
      a bijector on event `[D]`.

    Examples:
    >>> from tflv.layers import AutoregressiveNetwork, GaussianHead, gaussian
    >>> h = tf.random.normal([4, 8])                          # encoder features [B, C]
    >>> made = AutoregressiveNetwork(event_size=2, hidden_units=(16,), conditional=True)
    >>> iaf = autoregressive_flow(made, context=h, inverse=True)
    >>> q = tfp.distributions.TransformedDistribution(gaussian(GaussianHead(2)(h)), iaf)
    >>> z, log_q = q.experimental_sample_and_log_prob(seed=[1, 2])
    >>> z.shape, log_q.shape
    (TensorShape([4, 2]), TensorShape([4]))
    >>> print(tf.reduce_max(tf.abs(log_q - q.log_prob(z))).numpy() < 1e-4)  # IAF: exact density
    True
    """
    if getattr(network, "conditional", context is not None) != (context is not None):
        raise ValueError("context must be given exactly when the network is conditional "
                         f"(network.conditional={network.conditional}, context given: "
                         f"{context is not None})")

    def shift_and_log_scale(y):  # y: [..., D]
        # In y's dtype: a mixed-precision network returns bfloat16 / float16 parameters.
        params = tf.cast(network(y if context is None else (y, context)), y.dtype)  # [..., D, 2]
        return params[..., 0], params[..., 1]

    flow = tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=shift_and_log_scale)
    return tfb.Invert(flow) if inverse else flow


class Planar(tfb.Bijector):
    """One planar map f(z) = z + û tanh(wᵀz + b) on event `[D]` (forward only).

    Args:
      u, w: `[B, D]` (broadcast against z `[..., B, D]`).
      b: `[B]`.
    """

    def __init__(self, u, w, b, validate_args: bool = False, name: str = "planar"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._w = tf.convert_to_tensor(w)
            self._b = tf.convert_to_tensor(b, dtype=self._w.dtype)
            u = tf.convert_to_tensor(u, dtype=self._w.dtype)
            if not u.shape.is_compatible_with(self._w.shape):
                raise ValueError(f"planar flow: u {u.shape} and w {self._w.shape} must have the "
                                 "same shape")
            wu = tf.reduce_sum(self._w * u, axis=-1, keepdims=True)  # [B, 1]
            w_norm_sq = tf.reduce_sum(tf.square(self._w), axis=-1, keepdims=True)
            self._u_hat = u + (tf.nn.softplus(wu) - 1.0 - wu) * self._w / w_norm_sq  # [B, D]
            super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                             parameters=parameters, name=name)

    def _activation(self, z):
        return tf.reduce_sum(self._w * z, axis=-1) + self._b  # [..., B]

    def _forward(self, z):
        return z + self._u_hat * tf.tanh(self._activation(z))[..., tf.newaxis]

    def _forward_log_det_jacobian(self, z):
        slope = 1.0 - tf.square(tf.tanh(self._activation(z)))  # [..., B]
        return tf.math.log(tf.abs(1.0 + slope * tf.reduce_sum(self._u_hat * self._w, axis=-1)))


def planar_flow(u: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tfb.Bijector:
    """L planar maps, applied in order l = 0 … L−1.

    Args:
      u, w: `[B, L, D]` (e.g. from `tflv.layers.PlanarFlowHead`).
      b: `[B, L]`.

    Returns:
      a bijector on event `[D]` (forward only).
    """
    num_flows = u.shape[-2]
    if num_flows is None:
        raise ValueError(f"planar_flow needs a static number of flows L in u [B, L, D], got "
                         f"{u.shape}")
    maps = [Planar(u[..., l, :], w[..., l, :], b[..., l], name=f"planar_{l}")
            for l in range(num_flows)]
    return tfb.Chain(maps[::-1])  # Chain applies its last bijector first
