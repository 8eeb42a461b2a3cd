"""Importance-weighted bounds on log p(x).

With K samples z_k ~ q(z | x) and weights w_k = p(x, z_k) / q(z_k | x),

    L_K(x) = E[log (1/K) Σ_k w_k]  <=  log p(x),

the importance-weighted (IWAE) bound of Burda et al. (2016): L_1 is the ELBO, L_K rises with K
(L_K <= L_{K+1}) and tends to log p(x) as K → ∞. Its single-draw estimate
log (1/K) Σ_k w_k is the importance-sampled estimate of log p(x) used to evaluate latent-variable
language models (the "IS" perplexity of the tutorial's experiments). A decoder that scores the K
codes folded into its batch holds `[K · B, T, V]` logits; `in_chunks` scores them a few codes at
a time instead, which bounds that memory without changing the estimate.

#### References
- Burda, Grosse & Salakhutdinov (2016). Importance Weighted Autoencoders.
- Kim, Wiseman & Rush (2018). A Tutorial on Deep Latent Variable Models of Natural Language,
  section 6 (evaluation).
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def iwae_bound(log_weights: tf.Tensor) -> tf.Tensor:
    """log (1/K) Σ_k exp(log_weights[k]), computed stably.

    Args:
      log_weights: `[K, B]` log p(x, z_k) − log q(z_k | x), K ≥ 1 samples on axis 0.

    Returns:
      `[B]`.
    """
    log_weights = tf.convert_to_tensor(log_weights)
    if log_weights.shape.rank == 0:
        raise ValueError("log_weights must have a leading sample axis [K, B], got a scalar")
    k = log_weights.shape[0] if log_weights.shape.rank is not None else None
    if k is not None and k < 1:
        raise ValueError(f"log_weights needs K >= 1 samples on axis 0, got shape "
                         f"{log_weights.shape}")
    num = tf.shape(log_weights)[0]
    with tf.control_dependencies([tf.debugging.assert_positive(
            num, message="iwae_bound: log_weights needs K >= 1 samples on axis 0")]):
        log_k = tf.math.log(tf.cast(num, log_weights.dtype))
    return tf.reduce_logsumexp(log_weights, axis=0) - log_k


def importance_sampled_log_marginal(log_joint_fn: Callable[[tf.Tensor], tf.Tensor],
                                    posterior: tfd.Distribution, num_samples: int,
                                    seed=None) -> tf.Tensor:
    """The IWAE estimate of log p(x) with `num_samples` draws from the proposal q.

    Args:
      log_joint_fn: z `[K, B, ...event]` ↦ log p(x, z) `[K, B]`.
      posterior: the proposal q(z | x), batch shape `[B]`.
      num_samples: K ≥ 1.
      seed: int or stateless `[2]` seed.

    Returns:
      `[B]`, an estimate whose expectation is L_K(x) <= log p(x).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    z, log_q = posterior.experimental_sample_and_log_prob(num_samples, seed=seed)  # [K, B, ...]
    return iwae_bound(log_joint_fn(z) - log_q)


def in_chunks(fn: Callable[[tf.Tensor], tf.Tensor], num_samples: int,
              chunk: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """`fn` over K samples evaluated `chunk` samples at a time: z `[K, ...]` ↦ `[K, ...]`.

    The K samples are padded with zeros to a multiple of `chunk`, `fn` is mapped over the
    ⌈K / chunk⌉ slices `[chunk, ...]` one after the other (`tf.map_fn`), and the padding's
    results are dropped, so the result equals `fn(z)` for any `fn` that treats its samples
    independently (a decoder's log-likelihood of each code), with the memory of `chunk` of them.

    Args:
      fn: z `[c, ...]` ↦ float32 `[c, ...]`, sample by sample along the first axis.
      num_samples: K ≥ 1, the first dimension of the z it will be given.
      chunk: samples per call of `fn`, ≥ 1 (at most K are used).

    Example:
    >>> z = tf.reshape(tf.range(14.0), [7, 2])   # K = 7 samples of a batch of 2
    >>> in_chunks(lambda c: 2.0 * c, num_samples=7, chunk=3)(z).shape   # fn called 3 times
    TensorShape([7, 2])
    """
    if num_samples < 1 or chunk < 1:
        raise ValueError(f"num_samples and chunk must be >= 1, got {num_samples}, {chunk}")
    chunk = min(chunk, num_samples)
    num_chunks = -(-num_samples // chunk)

    def chunked(z: tf.Tensor) -> tf.Tensor:
        rest = tf.shape(z)[1:]
        padding = tf.zeros(tf.concat([[num_chunks * chunk - num_samples], rest], 0), z.dtype)
        slices = tf.reshape(tf.concat([z, padding], 0), tf.concat([[num_chunks, chunk], rest], 0))
        out = tf.map_fn(fn, slices, fn_output_signature=tf.float32)  # [num_chunks, chunk, ...]
        return tf.reshape(out, tf.concat([[num_chunks * chunk], tf.shape(out)[2:]], 0))[
            :num_samples]

    return chunked
