"""A reparameterised Gaussian latent that adds its KL term to the model's losses.

For use inside any Keras model: given q(z | x) = N(loc, diag scale²) from `GaussianHead`, the
layer draws z = loc + scale ⊙ ε, ε ~ N(0, I) (Kingma & Welling 2014) and adds
β · KL(q(z | x) ‖ N(0, I)) (closed form, `tflv.vi.elbo.kl_divergence`) averaged over the batch
to `model.losses`. With a reconstruction loss equal to the negative log-likelihood summed over
the tokens of an example, the model's total loss is then the negative ELBO (β = 1), so a plain
`model.fit` maximises the ELBO. At inference (`training=False`) it returns the mean, z = loc.

#### References
- Kingma & Welling (2014). Auto-Encoding Variational Bayes.
- Bowman et al. (2016). Generating Sentences from a Continuous Space.
"""
from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.layers.heads import gaussian
from tflv.vi.elbo import kl_divergence

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="tflv")
class GaussianLatent(keras.layers.Layer):
    """(loc, scale) `(batch_size, latent_dim)` each → z `(batch_size, latent_dim)`; adds β·KL.

    Args:
      kl_weight: β, the weight of the KL term added to the model's losses.
      seed: seed of the reparameterisation noise.

    Call arguments:
      inputs: `(loc, scale)` from `GaussianHead`.
      training: sample when true, return the mean otherwise.

    Examples:
    >>> loc, scale = tf.zeros([4, 16]), tf.ones([4, 16])   # e.g. from tflv.layers.GaussianHead
    >>> latent = GaussianLatent()
    >>> z = latent((loc, scale), training=True)            # loc + scale ⊙ ε, (4, 16)
    >>> [float(loss) for loss in latent.losses]            # KL(N(0, I) ‖ N(0, I)) = 0
    [0.0]
    """

    def __init__(self, kl_weight: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.seed = seed
        self.noise = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        loc, scale = inputs
        # The KL term in float32 whatever the compute dtype (mixed precision).
        q = gaussian((tf.cast(loc, tf.float32), tf.cast(scale, tf.float32)))
        prior = tfd.MultivariateNormalDiag(loc=tf.zeros_like(q.loc))
        self.add_loss(self.kl_weight * tf.reduce_mean(kl_divergence(q, prior)))
        if not training:
            return loc
        return loc + scale * keras.random.normal(tf.shape(loc), dtype=loc.dtype, seed=self.noise)

    def get_config(self):
        config = super().get_config()
        config.update(kl_weight=self.kl_weight, seed=self.seed)
        return config
