"""Semi-amortized variational inference: refine the encoder's λ by differentiable SGD steps.

The encoder gives λ_0 = enc(x) (e.g. the Gaussian's mean and log-scale); K steps of gradient
ascent on the example's ELBO,

    λ_{k+1} = λ_k + α ∇_λ ELBO(x; λ_k, θ),   k = 0 … K−1,

give λ_K, and the model is trained on ELBO(x; λ_K, θ). The steps are kept on the tape, so the
gradient of the final ELBO reaches the encoder through dλ_K/dλ_0 = Π_k (I + α ∇²_λ ELBO(λ_k))
(Hessian-vector products by nested automatic differentiation), as in SA-VAE (Kim et al. 2018),
which closes part of the amortization gap (Cremer et al. 2018).

#### References
- Kim, Wiseman, Miller, Sontag & Rush (2018). Semi-Amortized Variational Autoencoders.
- Cremer, Li & Duvenaud (2018). Inference Suboptimality in Variational Autoencoders.
"""
from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf


def refine(objective_fn: Callable[[list[tf.Tensor], int], tf.Tensor],
           params: Sequence[tf.Tensor], num_steps: int, step_size: float) -> list[tf.Tensor]:
    """K differentiable gradient-ascent steps on `objective_fn` from `params`.

    Args:
      objective_fn: (λ, k) ↦ per-example ELBO `[B]` (summed for the step: the examples'
        λ are independent); `k` lets a Monte Carlo ELBO draw fresh samples at every step.
      params: λ_0, a list of tensors (e.g. `[loc [B, D], log_scale [B, D]]`).
      num_steps: K ≥ 0.
      step_size: α > 0.

    Returns:
      λ_K, differentiable w.r.t. λ_0 and anything `objective_fn` closes over.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    if step_size <= 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    params = [tf.convert_to_tensor(p) for p in params]
    for k in range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = tf.reduce_sum(objective_fn(params, k))
        grads = tape.gradient(value, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        params = [p + step_size * g for p, g in zip(params, grads)]
    return params
