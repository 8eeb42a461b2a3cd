"""Schedules of a training step t: the KL weight β(t) and the Gumbel-softmax temperature τ(t).

KL annealing against posterior collapse (Bowman et al. 2016) raises β from near 0 to 1:

    linear:    β(t) = min(1, β0 + (1 − β0) t / T)
    sigmoid:   β(t) = 1 / (1 + exp(−k (t − t0)))           (Bowman et al. 2016, logistic)
    cyclical:  β(t) = linear(t mod C, T = r C, β0 = 0)     (Fu et al. 2019: M cycles of length C,
                                                            ramp over a fraction r, then hold 1)

`kl_weight` names the three β(t) schedules over one warm-up length T (and `none`, β = 1): the
choice a model offers as a setting (`KL_SCHEDULES`).

The relaxed-categorical temperature is annealed as τ(t) = max(τ_min, τ0 exp(−r t)) (Jang et al.
2017, section 3 of the experiments).

All functions take an int or tensor step and return a float32 scalar tensor, so they can be
evaluated inside `tf.function` with the optimizer's `iterations` variable.

#### References
- Bowman et al. (2016). Generating Sentences from a Continuous Space.
- Fu, Li, Liu, Gao, Celikyilmaz & Carin (2019). Cyclical Annealing Schedule: A Simple Approach
  to Mitigating KL Vanishing.
- Jang, Gu & Poole (2017). Categorical Reparameterization with Gumbel-Softmax.
"""
from __future__ import annotations

import tensorflow as tf


def _step(step) -> tf.Tensor:
    return tf.cast(step, tf.float32)


def linear_kl_weight(step, warmup_steps: float, initial: float = 0.0) -> tf.Tensor:
    """β(t) = min(1, β0 + (1 − β0) t / T), T = `warmup_steps` > 0."""
    if warmup_steps <= 0:
        raise ValueError(f"warmup_steps must be > 0, got {warmup_steps}")
    if not 0.0 <= initial <= 1.0:
        raise ValueError(f"initial must be in [0, 1], got {initial}")
    return tf.minimum(1.0, initial + (1.0 - initial) * _step(step) / float(warmup_steps))


def sigmoid_kl_weight(step, midpoint: float, rate: float) -> tf.Tensor:
    """β(t) = 1 / (1 + exp(−k (t − t0))), t0 = `midpoint`, k = `rate` > 0."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    return tf.sigmoid(rate * (_step(step) - midpoint))


def cyclical_kl_weight(step, cycle_steps: int, ramp_fraction: float = 0.5) -> tf.Tensor:
    """β(t) = min(1, (t mod C) / (r C)): a linear ramp from 0 over r C steps, repeated every C."""
    if cycle_steps <= 0:
        raise ValueError(f"cycle_steps must be > 0, got {cycle_steps}")
    if not 0.0 < ramp_fraction <= 1.0:
        raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction}")
    return linear_kl_weight(tf.math.floormod(_step(step), float(cycle_steps)),
                            warmup_steps=ramp_fraction * cycle_steps)


KL_SCHEDULES = ("none", "linear", "sigmoid", "cyclical")


def kl_weight(schedule: str, step, warmup_steps: int) -> tf.Tensor:
    """β(t) of a named schedule (`KL_SCHEDULES`) over `warmup_steps` T.

    linear: 0 → 1 over T steps; sigmoid: logistic centred at T/2 with slope 10/T (β ≈ 0.007 at
    t = 0 and 0.993 at t = T); cyclical: a ramp over T/2 steps repeated every T; none: 1.

    Example:
    >>> [round(float(kl_weight(name, 25, 100)), 3) for name in KL_SCHEDULES]  # t = 25, T = 100
    [1.0, 0.25, 0.076, 0.5]
    """
    if schedule == "none":
        return tf.constant(1.0)
    if schedule == "linear":
        return linear_kl_weight(step, warmup_steps)
    if schedule == "sigmoid":
        return sigmoid_kl_weight(step, midpoint=warmup_steps / 2, rate=10.0 / warmup_steps)
    if schedule == "cyclical":
        return cyclical_kl_weight(step, cycle_steps=warmup_steps, ramp_fraction=0.5)
    raise ValueError(f"kl_schedule must be one of {', '.join(KL_SCHEDULES)}, got {schedule!r}")


def gumbel_temperature(step, initial: float = 1.0, rate: float = 1e-4,
                       minimum: float = 0.5) -> tf.Tensor:
    """τ(t) = max(τ_min, τ0 exp(−r t)), with τ0 ≥ τ_min > 0 and r ≥ 0."""
    if minimum <= 0 or initial < minimum:
        raise ValueError(f"temperatures must satisfy initial >= minimum > 0, got initial={initial}"
                         f", minimum={minimum}")
    if rate < 0:
        raise ValueError(f"rate must be >= 0, got {rate}")
    return tf.maximum(minimum, initial * tf.exp(-rate * _step(step)))
