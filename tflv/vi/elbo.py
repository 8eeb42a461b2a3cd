"""The evidence lower bound, its KL term, a KL weight and free bits.

For an encoder q(z | x) and a model p(x, z) = p(z) p(x | z), the ELBO of one example is

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))  <=  log p(x).

`kl_divergence` uses the closed form where `tfd.kl_divergence` knows the pair and a Monte
Carlo estimate E_q[log q(z) - log p(z)] otherwise: on the caller's samples `z` when given (the
ones already used for the reconstruction term), else through `tfp.vi.monte_carlo_variational_loss`
with the KL discrepancy, which draws its own samples (reparameterized or score-function, as the
posterior allows).

The training objective replaces the KL by β · KL (Bowman et al. 2016 anneal β from 0 to 1; β-VAE
keeps β fixed) and, with free bits λ (Kingma et al. 2016, eq. 15), by β · max(λ, E_batch[KL]):
KL below λ nats costs nothing and gets no gradient, so the encoder may spend λ nats for free.
With `free_bits_per_dimension=True` the clamp applies to each latent dimension j,
Σ_j max(λ, E_batch[KL_j]), which needs a factorized posterior and prior. The per-example terms are
returned so that their batch mean is exactly that objective: example i contributes KL_ij where
the batch mean of KL_j is above λ, and λ (with no gradient) where it is not.

#### References
- Kingma & Welling (2014). Auto-Encoding Variational Bayes.
- Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016). Generating Sentences from a
  Continuous Space.
- Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016). Improved Variational Inference
  with Inverse Autoregressive Flow.
- Higgins et al. (2017). beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
  Framework.
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class ELBO(NamedTuple):
    """Per-example terms, each `[B]` (B: the posterior's batch shape).

    elbo: reconstruction − KL, the bound on log p(x) (report this).
    objective: reconstruction − β · (KL with free bits), the quantity to maximize.
    reconstruction: E_q[log p(x | z)], the mean of `log_likelihood` over its sample axis.
    kl: KL(q(z | x) || p(z)).
    """

    elbo: tf.Tensor
    objective: tf.Tensor
    reconstruction: tf.Tensor
    kl: tf.Tensor


def _factors(dist: tfd.Distribution, role: str) -> tfd.Distribution:
    """The per-dimension marginals of a factorized distribution over vectors: batch `[B, D]`."""
    if isinstance(dist, tfd.Independent) and dist.reinterpreted_batch_ndims == 1:
        return dist.distribution
    if isinstance(dist, tfd.MultivariateNormalDiag):
        return tfd.Normal(dist.loc, dist.stddev())
    raise ValueError(
        f"per-dimension KL needs a factorized {role} (tfd.Independent over one axis or "
        f"tfd.MultivariateNormalDiag), got {type(dist).__name__}")


def _check_samples(z: tf.Tensor, dist: tfd.Distribution) -> int:
    """Checks that `z: [S..., *batch, *event]` ends in `dist`'s shape; returns the sample rank."""
    expected = dist.batch_shape.concatenate(dist.event_shape)
    if z.shape.rank is None or expected.rank is None:
        return 0 if z.shape.rank is None else z.shape.rank - (expected.rank or 0)
    sample_rank = z.shape.rank - expected.rank
    if sample_rank < 0 or not z.shape[sample_rank:].is_compatible_with(expected):
        raise ValueError(
            f"z has shape {z.shape}, which does not end in the posterior's batch + event shape "
            f"{expected} (batch {dist.batch_shape}, event {dist.event_shape})")
    return sample_rank


def kl_divergence(posterior: tfd.Distribution, prior: tfd.Distribution, z: tf.Tensor | None = None,
                  per_dimension: bool = False, num_samples: int = 1, seed=None) -> tf.Tensor:
    """KL(q || p), closed form where TFP knows it, else a Monte Carlo estimate.

    Args:
      posterior: q(z | x), batch shape `[B]`, event `[D]` (or any event shape).
      prior: p(z), broadcastable to q's batch shape, same event shape.
      z: optional samples from q, `[S, B, D]` or `[B, D]`, used by the Monte Carlo estimate.
      per_dimension: return `[B, D]` KLs of the per-dimension marginals (factorized q and p only).
      num_samples: samples drawn by `tfp.vi.monte_carlo_variational_loss` when no closed form
        exists and `z` is not given.
      seed: seed for those samples (int or stateless `[2]`).

    Returns:
      `[B]` (or `[B, D]` with `per_dimension`).
    """
    if posterior.event_shape.rank is not None and prior.event_shape.rank is not None and \
            not posterior.event_shape.is_compatible_with(prior.event_shape):
        raise ValueError(f"posterior event shape {posterior.event_shape} does not match prior "
                         f"event shape {prior.event_shape}")
    if per_dimension:
        posterior, prior = _factors(posterior, "posterior"), _factors(prior, "prior")
    try:
        return tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        pass
    if z is not None:
        z = tf.convert_to_tensor(z, dtype=posterior.dtype)
        sample_rank = _check_samples(z, posterior)  # per dimension: the factors' batch [B, D]
        log_ratio = posterior.log_prob(z) - prior.log_prob(z)  # [S..., B]
        return tf.reduce_mean(log_ratio, axis=list(range(sample_rank)))
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    return tfp.vi.monte_carlo_variational_loss(
        prior.log_prob, posterior, sample_size=num_samples,
        discrepancy_fn=tfp.vi.kl_reverse, seed=seed)


def _free_bits(kl: tf.Tensor, free_bits: float) -> tf.Tensor:
    """Per-example KL whose batch mean is max(λ, E_batch[KL]), per trailing column if any.

    kl: `[B]` or `[B, D]`; the batch axis is 0.
    """
    above = tf.reduce_mean(kl, axis=0, keepdims=True) > free_bits  # [1] or [1, D]
    return tf.where(above, kl, tf.constant(free_bits, kl.dtype))


def elbo(log_likelihood: tf.Tensor, posterior: tfd.Distribution, prior: tfd.Distribution,
         z: tf.Tensor | None = None, kl_weight: float | tf.Tensor = 1.0, free_bits: float = 0.0,
         free_bits_per_dimension: bool = False, num_kl_samples: int = 1, seed=None) -> ELBO:
    """Per-example ELBO, its reconstruction and KL terms, and the β / free-bits objective.

    Args:
      log_likelihood: log p(x | z) at samples z ~ q, `[S, B]` (averaged over S) or `[B]`.
      posterior: q(z | x), batch shape `[B]`.
      prior: p(z).
      z: the samples behind `log_likelihood`, `[S, B, D]` or `[B, D]` (used only when the KL has no
        closed form).
      kl_weight: β ≥ 0, a float or a scalar tensor (e.g. from `tflv.vi.schedules`).
      free_bits: λ ≥ 0 in nats: on the total KL, or on each dimension's KL with
        `free_bits_per_dimension=True` (Kingma et al. 2016).
      free_bits_per_dimension: clamp each dimension's batch-mean KL instead of the total.
      num_kl_samples, seed: for a Monte Carlo KL when there is no closed form and no `z`.

    Returns:
      `ELBO(elbo, objective, reconstruction, kl)`, each `[B]`.

    Examples:
    >>> q = tfd.MultivariateNormalDiag(tf.zeros([3, 2]), tf.fill([3, 2], 0.5))  # batch [3], event [2]
    >>> prior = tfd.MultivariateNormalDiag(tf.zeros(2))
    >>> z = q.sample(seed=[1, 2])                                            # [3, 2]
    >>> log_likelihood = -tf.reduce_sum(tf.square(z), -1)                    # log p(x | z), [3]
    >>> terms = elbo(log_likelihood, q, prior, kl_weight=0.5, free_bits=1.0)
    >>> print(terms.kl.numpy().round(4))          # 2 · (σ²/2 − 1/2 − log σ), σ = 1/2
    [0.6363 0.6363 0.6363]
    >>> bool(tf.reduce_all(terms.objective == log_likelihood - 0.5 * 1.0))  # KL below λ = 1: β·λ
    True
    >>> loss = -terms.objective                              # [3]
    """
    if free_bits < 0:
        raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
    if isinstance(kl_weight, (int, float)) and kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
    log_likelihood = tf.convert_to_tensor(log_likelihood)
    batch_rank = posterior.batch_shape.rank
    rank = log_likelihood.shape.rank
    if batch_rank is not None and rank is not None and rank not in (batch_rank, batch_rank + 1):
        raise ValueError(
            f"log_likelihood has shape {log_likelihood.shape}; expected the posterior's batch "
            f"shape {posterior.batch_shape}, optionally after one leading sample axis")
    reconstruction = (tf.reduce_mean(log_likelihood, axis=0)
                      if rank == (batch_rank or 0) + 1 else log_likelihood)  # [B]
    kl_parts = kl_divergence(posterior, prior, z=z, per_dimension=free_bits_per_dimension,
                             num_samples=num_kl_samples, seed=seed)  # [B] or [B, D]
    kl = tf.reduce_sum(kl_parts, axis=-1) if free_bits_per_dimension else kl_parts  # [B]
    kl_term = kl
    if free_bits > 0:
        kl_term = _free_bits(kl_parts, free_bits)
        if free_bits_per_dimension:
            kl_term = tf.reduce_sum(kl_term, axis=-1)
    kl_weight = tf.cast(tf.convert_to_tensor(kl_weight, dtype_hint=kl.dtype), kl.dtype)
    return ELBO(elbo=reconstruction - kl,
                objective=reconstruction - kl_weight * kl_term,
                reconstruction=reconstruction, kl=kl)
