"""Objectives and gradient estimators, independent of any model.

- `elbo`, `kl_divergence`, `ELBO` (elbo.py): per-example ELBO with β and free bits.
- `iwae_bound`, `importance_sampled_log_marginal`, `in_chunks` (bounds.py).
- `estimators`: `exact`, `score_function` (+ baselines), `vimco`, `reparameterized`,
  `gumbel_softmax`.
- `schedules`: KL weight (linear, sigmoid, cyclical; `kl_weight` by name) and Gumbel
  temperature schedules.
- `flows`: IAF / MAF and planar flows as `tfp.bijectors`.
- `semi_amortized.refine`: SA-VAE's differentiable refinement of λ.
- `conjugate`: the Dirichlet–multinomial posterior and LDA (CAVI, online VB).
"""
from tflv.vi import conjugate, estimators, flows, schedules, semi_amortized
from tflv.vi.bounds import importance_sampled_log_marginal, in_chunks, iwae_bound
from tflv.vi.elbo import ELBO, elbo, kl_divergence

__all__ = ["ELBO", "elbo", "kl_divergence", "iwae_bound", "importance_sampled_log_marginal",
           "in_chunks",
           "estimators", "schedules", "flows", "semi_amortized", "conjugate"]
