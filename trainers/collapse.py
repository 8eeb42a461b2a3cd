"""The trainer's warning that a latent variable has collapsed, with the tutorial's remedies.

Posterior collapse (Kim, Wiseman & Rush 2018, section 6): the optimum of the ELBO of a model with
a strong decoder often has q(z | x) = p(z), so z carries nothing about x. Two signs of it in a
model's evaluation metrics:

- the KL term per example, E_x KL(q(z | x) || p(z)), below `KL_THRESHOLD` nats;
- no active unit: every dimension d has Var_x E_q[z_d | x] ≤ 0.01 (Burda et al. 2016;
  `tflv.metrics.active_units`).

`collapse_warning(model, metrics)` returns one message naming what it saw and the remedies the
model has flags for (`REMEDIES`), or None. Topic models' near-duplicate topics are a different
sign with their own warning.

    >>> print(collapse_warning("sentence_vae", {"kl": 0.02, "active_units": 0.0})[:62])
    sentence_vae's latent variable has collapsed (KL per example 0
"""
from __future__ import annotations

from typing import Mapping

KL_THRESHOLD = 0.1  # nats per example

# The tutorial's section-6 remedies, as the flags that switch them on, per model.
REMEDIES = {
    "sentence_vae": (
        "KL annealing (--kl_schedule=linear|sigmoid|cyclical, --kl_warmup_steps), "
        "free bits (--free_bits=0.5), word dropout (--word_dropout=0.3), "
        "a dilated CNN decoder (--decoder=cnn), generative skip connections "
        "(--skip_connections), semi-amortized inference (--sa_vae_steps=10) or a vMF posterior "
        "(--latent=vmf)"),
}


def collapse_warning(model: str, metrics: Mapping[str, float]) -> str | None:
    """A warning if `metrics` (a model's evaluation metrics: per-example `kl`, `active_units`)
    show a collapsed latent variable of `model` (a name with `REMEDIES`); else None."""
    if model not in REMEDIES:
        return None
    signs = []
    if "kl" in metrics and metrics["kl"] < KL_THRESHOLD:
        signs.append(f"KL per example {metrics['kl']:.3g} nats < {KL_THRESHOLD}")
    if "active_units" in metrics and metrics["active_units"] == 0:
        signs.append("0 active units")
    if not signs:
        return None
    return (f"{model}'s latent variable has collapsed ({'; '.join(signs)}): q(z | x) ≈ p(z), "
            f"so z carries almost nothing about x (posterior collapse, Kim, Wiseman & Rush 2018, "
            f"section 6). Remedies: {REMEDIES[model]}.")
