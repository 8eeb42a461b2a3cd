"""The von Mises–Fisher distribution with a fixed concentration, declared reparameterized.

On the unit sphere S^{D−1} ⊂ R^D,

    vMF(z; μ, κ) = C_D(κ) exp(κ μᵀz),   C_D(κ) = κ^{D/2−1} / ((2π)^{D/2} I_{D/2−1}(κ)).

Xu & Durrett (2018) use it as the posterior of a text VAE with a *fixed* κ and the uniform prior
on the sphere: the KL,

    KL(vMF(μ, κ) || U(S^{D−1})) = κ A_D(κ) + log C_D(κ) + log(2 π^{D/2} / Γ(D/2)),
    A_D(κ) = I_{D/2}(κ) / I_{D/2−1}(κ),

then depends on κ alone, so it cannot collapse to zero. TFP's `tfd.VonMisesFisher` samples by
Wood's (1994) rejection sampler for the component along e_1 and a Householder reflection of e_1
onto μ; the reflection is differentiable in μ and the rejection step does not involve μ, so
for a fixed κ the sample z = H(μ) w is a reparameterization in μ. TFP nevertheless declares
`NOT_REPARAMETERIZED` for D ≠ 3 (because gradients in κ are not supported there). This subclass
holds κ constant (no gradient) and declares `FULLY_REPARAMETERIZED`, so that
`tflv.vi.estimators.reparameterized` and `tfp.vi` treat its samples as pathwise. Its KL to
`tfd.SphericalUniform` is TFP's closed form (registered for the parent class).

#### References
- Wood (1994). Simulation of the von Mises Fisher distribution.
- Davidson, Falorsi, De Cao, Kipf & Tomczak (2018). Hyperspherical Variational Auto-Encoders.
- Xu & Durrett (2018). Spherical Latent Spaces for Stable Variational Autoencoders.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class VonMisesFisherFixedConcentration(tfd.VonMisesFisher):
    """vMF(μ, κ) whose samples are pathwise in μ; κ is a constant (its gradient is stopped).

    Args:
      mean_direction: `[..., D]` unit vectors μ.
      concentration: κ ≥ 0, broadcastable to the batch shape; held fixed.
      validate_args, allow_nan_stats, name: as in `tfd.VonMisesFisher`.

    Examples:
    >>> v = tf.constant([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]])
    >>> q = VonMisesFisherFixedConcentration(tf.math.l2_normalize(v, -1), 50.0)  # batch [2], event [3]
    >>> kl = tfd.kl_divergence(q, tfd.SphericalUniform(dimension=3))             # [2]
    >>> print(kl.numpy().round(3))   # κ alone sets it: D = 3 gives κ coth κ − 1 + log(κ / sinh κ)
    [3.605 3.605]
    """

    def __init__(self, mean_direction, concentration, validate_args: bool = False,
                 allow_nan_stats: bool = True, name: str = "VonMisesFisherFixedConcentration"):
        parameters = dict(locals())
        super().__init__(mean_direction=mean_direction,
                         concentration=tf.stop_gradient(concentration),
                         validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = parameters
        self._reparameterization_type = tfd.FULLY_REPARAMETERIZED

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return super()._parameter_properties(dtype, num_classes=num_classes)
