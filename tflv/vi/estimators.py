"""Gradient estimators for E_{q_φ(z)}[f_θ(z)], each a surrogate whose gradient is the estimator.

Every function returns a per-example surrogate `[B]` whose *value* is the (estimated) objective
and whose *gradient*, w.r.t. both φ (the distribution q) and θ (inside the learning signal f),
is the estimator; a model maximizes it (or minimizes its negative) like any loss. With
f = log p(x, z) − log q(z | x) the objective is the ELBO. `sg` is `tf.stop_gradient`.

- `exact`: Σ_z q(z) f(z) over a categorical z with K values, the exact gradient.
- `score_function` (REINFORCE, Williams 1992): with S samples z_s ~ q,
      ĝ = 1/S Σ_s [∇f(z_s) + (f(z_s) − b_s) ∇ log q(z_s)],
  unbiased for any baseline b_s that does not depend on z_s. The surrogate is
  f + sg(f − b) (log q − sg(log q)): value f, gradient ĝ. Baselines (control variates):
  `MovingAverageBaseline` (an exponential moving average of f, Williams 1992; Mnih & Gregor
  2014), `tflv.layers.BaselineHead` (a learned, input-dependent b(x), Mnih & Gregor 2014) and
  `leave_one_out_baseline` (b_s = mean of the other S − 1 samples' signals, the multi-sample
  baseline of VIMCO, Mnih & Rezende 2016, for the single-sample objective). A baseline that carries
  gradients is also fitted: the surrogate adds −½(sg(f) − b)² − sg(·), zero in value, whose
  gradient regresses b onto f.
- `vimco` (Mnih & Rezende 2016): the multi-sample objective log (1/S) Σ_s w_s (the IWAE bound)
  with per-sample learning signals L − L_{−s}, where L_{−s} replaces w_s by the geometric mean
  of the other weights.
- `reparameterized` (Kingma & Welling 2014): z = g_φ(ε) so ĝ = 1/S Σ_s ∇ f(g_φ(ε_s)); the
  surrogate is the mean signal, differentiated through the samples.
- `gumbel_softmax` (Jang et al. 2017; Maddison et al. 2017): the Concrete relaxation
  z̃ = softmax((logits + g) / τ), g ~ Gumbel, a reparameterized but biased estimator whose bias
  vanishes as τ → 0; with `straight_through=True` the forward pass uses the one-hot argmax and the
  backward pass the relaxed sample's gradient.

A model that chooses among estimators for a categorical z takes an estimator object,
`Enumeration()`, `ScoreFunction(num_samples, baseline)` or `GumbelSoftmax(num_samples,
temperature, straight_through)`, whose `surrogate(logits, f)` applies the functions above;
`from_name` maps a config's name (`ESTIMATORS`) to one, `from_hparams` a model config's fields
(`estimator`, `latent_samples`, `baseline`, `gumbel_temperature`, `straight_through`), and
`options` gives the name and options a model's `get_config` records.

#### References
- Williams (1992). Simple Statistical Gradient-Following Algorithms for Connectionist
  Reinforcement Learning.
- Mnih & Gregor (2014). Neural Variational Inference and Learning in Belief Networks.
- Mnih & Rezende (2016). Variational Inference for Monte Carlo Objectives.
- Kingma & Welling (2014). Auto-Encoding Variational Bayes.
- Jang, Gu & Poole (2017). Categorical Reparameterization with Gumbel-Softmax.
- Maddison, Mnih & Teh (2017). The Concrete Distribution.
- Bengio, Léonard & Courville (2013). Estimating or Propagating Gradients Through Stochastic
  Neurons (straight-through).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def _check_samples(name: str, tensor: tf.Tensor, minimum: int = 1) -> tf.Tensor:
    """`tensor: [S, B...]` must have a sample axis with at least `minimum` samples."""
    tensor = tf.convert_to_tensor(tensor)
    if tensor.shape.rank is not None and tensor.shape.rank < 2:
        raise ValueError(f"{name} must be [S, B] with a leading sample axis, got shape "
                         f"{tensor.shape} (add one with x[tf.newaxis] for a single sample)")
    if tensor.shape.rank is not None and tensor.shape[0] is not None and \
            tensor.shape[0] < minimum:
        raise ValueError(f"{name} needs at least {minimum} samples on axis 0, got shape "
                         f"{tensor.shape}")
    return tensor


def _check_same_shape(names: tuple[str, str], a: tf.Tensor, b: tf.Tensor) -> None:
    if not a.shape.is_compatible_with(b.shape):
        raise ValueError(f"{names[0]} {a.shape} and {names[1]} {b.shape} must have the same shape")


def _check_temperature(temperature, dtype: tf.DType) -> tf.Tensor:
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    temperature = tf.cast(tf.convert_to_tensor(temperature, dtype_hint=dtype), dtype)
    with tf.control_dependencies([tf.debugging.assert_positive(
            temperature, message="gumbel_softmax: temperature must be > 0")]):
        return tf.identity(temperature)


def exact(log_q_z: tf.Tensor, learning_signal: tf.Tensor) -> tf.Tensor:
    """Σ_k q(k) f(k): the expectation by enumeration, exact in value and gradient.

    Args:
      log_q_z: `[B, K]` normalized log-probabilities of each of the K values.
      learning_signal: `[B, K]` f at each value.

    Returns:
      `[B]`.
    """
    log_q_z, learning_signal = tf.convert_to_tensor(log_q_z), tf.convert_to_tensor(learning_signal)
    _check_same_shape(("log_q_z", "learning_signal"), log_q_z, learning_signal)
    return tf.reduce_sum(tf.exp(log_q_z) * learning_signal, axis=-1)


def score_function(log_q_z: tf.Tensor, learning_signal: tf.Tensor,
                   baseline: tf.Tensor | float | None = None) -> tf.Tensor:
    """REINFORCE with an optional control variate; value: mean f, gradient: the estimator.

    Args:
      log_q_z: `[S, B]` log q(z_s | x) of the S samples (differentiable in φ).
      learning_signal: `[S, B]` f(z_s) (may depend on θ, and on φ directly).
      baseline: b, broadcastable to `[S, B]`: a float, `[B]` from `BaselineHead` (fitted through
        this surrogate), `[S, B]` from `leave_one_out_baseline`, or a scalar from a
        `MovingAverageBaseline`. It must not depend on sample s's own z_s.

    Returns:
      `[B]` surrogate.
    """
    log_q_z = _check_samples("log_q_z", log_q_z)
    learning_signal = _check_samples("learning_signal", learning_signal)
    _check_same_shape(("log_q_z", "learning_signal"), log_q_z, learning_signal)
    b = tf.zeros_like(learning_signal) if baseline is None else \
        tf.broadcast_to(tf.cast(tf.convert_to_tensor(baseline, dtype_hint=learning_signal.dtype),
                                learning_signal.dtype), tf.shape(learning_signal))
    advantage = tf.stop_gradient(learning_signal - b)  # [S, B]
    score = log_q_z - tf.stop_gradient(log_q_z)  # zero in value, ∇ log q in gradient
    baseline_fit = 0.5 * tf.square(tf.stop_gradient(learning_signal) - b)
    surrogate = (learning_signal + advantage * score
                 - (baseline_fit - tf.stop_gradient(baseline_fit)))  # [S, B]
    return tf.reduce_mean(surrogate, axis=0)


def leave_one_out_baseline(learning_signal: tf.Tensor) -> tf.Tensor:
    """b_s = 1/(S−1) Σ_{j≠s} f(z_j), no gradient: `[S, B]` → `[S, B]`, S ≥ 2."""
    learning_signal = tf.stop_gradient(_check_samples("learning_signal", learning_signal, 2))
    num = tf.cast(tf.shape(learning_signal)[0], learning_signal.dtype)
    total = tf.reduce_sum(learning_signal, axis=0, keepdims=True)  # [1, B]
    return (total - learning_signal) / (num - 1.0)


class MovingAverageBaseline(tf.Module):
    """b = exponential moving average of the batch-mean learning signal (input independent).

    Calling it returns the current (bias-corrected) average, computed from earlier calls only,
    then folds in this call's signal: b_t = Σ_{u<t} (1−d) d^{t−1−u} f̄_u / (1 − d^t), 0 at t = 0.

    Args:
      decay: d in [0, 1).
    """

    def __init__(self, decay: float = 0.9, name: str | None = None):
        super().__init__(name=name)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.average = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="average")
        self.count = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="count")

    def __call__(self, learning_signal: tf.Tensor) -> tf.Tensor:
        """learning_signal: `[S, B]` → scalar b (float32; cast by `score_function`)."""
        debias = 1.0 - tf.pow(self.decay, self.count)
        value = tf.math.divide_no_nan(tf.identity(self.average), debias)
        mean = tf.cast(tf.reduce_mean(tf.stop_gradient(learning_signal)), tf.float32)
        with tf.control_dependencies([value]):
            self.average.assign(self.decay * self.average + (1.0 - self.decay) * mean)
            self.count.assign_add(1.0)
        return value


def vimco(log_q_z: tf.Tensor, log_weights: tf.Tensor) -> tf.Tensor:
    """VIMCO: value log (1/S) Σ_s w_s, gradient with leave-one-out learning signals.

        ĝ = Σ_s (L − L_{−s}) ∇ log q(z_s) + Σ_s w̃_s ∇ log w_s,
        L_{−s} = log (1/S) (Σ_{j≠s} w_j + exp(1/(S−1) Σ_{j≠s} log w_j)),  w̃ = w / Σ w.

    Args:
      log_q_z: `[S, B]` log q(z_s | x), S ≥ 2.
      log_weights: `[S, B]` log w_s = log p(x, z_s) − log q(z_s | x).

    Returns:
      `[B]`: the IWAE bound estimate, with the VIMCO gradient.
    """
    log_q_z = _check_samples("log_q_z", log_q_z, 2)
    log_weights = _check_samples("log_weights", log_weights, 2)
    _check_same_shape(("log_q_z", "log_weights"), log_q_z, log_weights)
    num = tf.shape(log_weights)[0]
    s = tf.cast(num, log_weights.dtype)
    bound = tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(s)  # [B...]
    lw = tf.reshape(tf.stop_gradient(log_weights), [num, -1])  # [S, N], N: the flat batch
    others_mean = (tf.reduce_sum(lw, axis=0, keepdims=True) - lw) / (s - 1.0)  # [S, N]
    # row s of [S, S, N]: the weights with w_s replaced by the others' geometric mean
    diagonal = tf.eye(num, dtype=tf.bool)[:, :, tf.newaxis]  # [S, S, 1]
    replaced = tf.where(diagonal, others_mean[:, tf.newaxis, :], lw[tf.newaxis, :, :])
    loo_bound = tf.reduce_logsumexp(replaced, axis=1) - tf.math.log(s)  # [S, N]
    loo_bound = tf.reshape(loo_bound, tf.shape(log_weights))  # [S, B...]
    signal = tf.stop_gradient(bound[tf.newaxis] - loo_bound)  # [S, B...]
    score = log_q_z - tf.stop_gradient(log_q_z)
    return bound + tf.reduce_sum(signal * score, axis=0)


def reparameterized(learning_signal: tf.Tensor,
                    distribution: tfd.Distribution | None = None) -> tf.Tensor:
    """Mean over samples of f(z_s), z_s = g_φ(ε_s); the gradient flows through the samples.

    Args:
      learning_signal: `[S, B]` f at reparameterized samples.
      distribution: optional q; a clear error if its samples are not fully reparameterized.

    Returns:
      `[B]`.
    """
    if distribution is not None and \
            distribution.reparameterization_type != tfd.FULLY_REPARAMETERIZED:
        raise ValueError(f"{type(distribution).__name__} samples are not fully reparameterized "
                         "(use score_function, or a reparameterized distribution)")
    return tf.reduce_mean(_check_samples("learning_signal", learning_signal), axis=0)


def gumbel_softmax(logits: tf.Tensor, learning_signal_fn: Callable[[tf.Tensor], tf.Tensor],
                   temperature: float | tf.Tensor, num_samples: int = 1, seed=None,
                   straight_through: bool = False) -> tf.Tensor:
    """Gumbel-softmax (Concrete) estimator, relaxed or straight-through.

    Args:
      logits: `[B, K]` unnormalized log q(z).
      learning_signal_fn: z `[S, B, K]` (relaxed or one-hot) ↦ f `[S, B]`.
      temperature: τ > 0, a float or scalar tensor (e.g. `schedules.gumbel_temperature`).
      num_samples: S ≥ 1.
      seed: int or stateless `[2]` seed.
      straight_through: evaluate f at one_hot(argmax z̃), differentiate through z̃.

    Returns:
      `[B]` mean of f over the S samples.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    logits = tf.convert_to_tensor(logits)
    temperature = _check_temperature(temperature, logits.dtype)
    relaxed = tfd.RelaxedOneHotCategorical(temperature, logits=logits).sample(
        num_samples, seed=seed)  # [S, B, K]
    z = relaxed
    if straight_through:
        hard = tf.one_hot(tf.argmax(relaxed, axis=-1), tf.shape(relaxed)[-1], dtype=relaxed.dtype)
        z = hard + relaxed - tf.stop_gradient(relaxed)
    return tf.reduce_mean(learning_signal_fn(z), axis=0)


# -- Estimator objects: what a model with a categorical z is given to estimate E_q[f(z)] -------

@dataclasses.dataclass(frozen=True)
class CategoricalEstimator:
    """How E_{q(z)}[f(z)] and its gradient are estimated for a categorical z with K values.

    A model that offers several estimators (`tflv.models.MixtureLM`, latent attention in
    `tflv.models.EncoderDecoder`) takes one of these objects
    and calls `surrogate`; `sampled` says whether the estimator draws z (and so needs an
    inference network q(z | x)) or enumerates the K values (and may use the exact posterior).
    `from_name` maps a config's name to an object (`ESTIMATORS`).

    >>> import tensorflow as tf
    >>> f = lambda z: tf.reduce_sum(z * [[[1.0, 3.0]]], axis=-1)       # f(k) = 1, 3: [S, B]
    >>> logits = tf.math.log([[0.25, 0.75]])                             # q = (1/4, 3/4)
    >>> round(float(Enumeration().surrogate(logits, f)[0]), 4)           # 1/4 + 9/4
    2.5
    >>> ScoreFunction(num_samples=2, baseline="leave_one_out").sampled
    True
    """

    name = ""
    sampled = True

    def surrogate(self, logits: tf.Tensor, learning_signal_fn: Callable[[tf.Tensor], tf.Tensor],
                  seed=None, learned_baseline: tf.Tensor | None = None) -> tf.Tensor:
        """The `[B]` surrogate (value: the estimate, gradient: the estimator).

        Args:
          logits: `[B, K]` unnormalized log q(z).
          learning_signal_fn: codes z `[S, B, K]` (one-hot or relaxed) ↦ f `[S, B]`.
          seed: stateless `[2]` seed of the samples.
          learned_baseline: `[B]` b(x) of a `BaselineHead` (`ScoreFunction(baseline="learned")`).
        """
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Enumeration(CategoricalEstimator):
    """Σ_k q(k) f(k) over all K values (`exact`): exact in value and gradient, K evaluations."""

    name = "exact"
    sampled = False

    def surrogate(self, logits, learning_signal_fn, seed=None, learned_baseline=None):
        k = tf.shape(logits)[-1]
        codes = tf.tile(tf.eye(k, dtype=logits.dtype)[:, tf.newaxis, :],
                        [1, tf.shape(logits)[0], 1])  # [K, B, K]
        table = tf.transpose(learning_signal_fn(codes))  # [B, K]
        return exact(tf.nn.log_softmax(logits), table)


BASELINES = ("none", "learned", "leave_one_out")


@dataclasses.dataclass(frozen=True)
class ScoreFunction(CategoricalEstimator):
    """REINFORCE (`score_function`) with S samples and a control variate: `"none"`,
    `"learned"` (the model's `BaselineHead`) or `"leave_one_out"` (S ≥ 2)."""

    num_samples: int = 1
    baseline: str = "none"
    name = "score_function"

    def __post_init__(self):
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got "
                             f"{self.baseline!r}")
        if self.baseline == "leave_one_out" and self.num_samples < 2:
            raise ValueError("baseline='leave_one_out' needs num_samples >= 2")

    def surrogate(self, logits, learning_signal_fn, seed=None, learned_baseline=None):
        q = tfd.Categorical(logits=logits)
        z = q.sample(self.num_samples, seed=seed)  # [S, B]
        signal = learning_signal_fn(tf.one_hot(z, tf.shape(logits)[-1], dtype=logits.dtype))
        baseline = None
        if self.baseline == "learned":
            if learned_baseline is None:
                raise ValueError("ScoreFunction(baseline='learned') needs learned_baseline")
            baseline = learned_baseline
        elif self.baseline == "leave_one_out":
            baseline = leave_one_out_baseline(signal)  # [S, B]
        return score_function(q.log_prob(z), signal, baseline)


@dataclasses.dataclass(frozen=True)
class GumbelSoftmax(CategoricalEstimator):
    """The Gumbel-softmax relaxation (`gumbel_softmax`) with S samples at temperature τ,
    straight-through or relaxed."""

    num_samples: int = 1
    temperature: float = 1.0
    straight_through: bool = False
    name = "gumbel_softmax"

    def __post_init__(self):
        if self.num_samples < 1 or not self.temperature > 0:
            raise ValueError(f"need num_samples >= 1 and temperature > 0, got "
                             f"{self.num_samples} and {self.temperature}")

    def surrogate(self, logits, learning_signal_fn, seed=None, learned_baseline=None):
        return gumbel_softmax(logits, learning_signal_fn, self.temperature,
                              num_samples=self.num_samples, seed=seed,
                              straight_through=self.straight_through)


# The registry of names (a model config's `estimator`) to estimator classes.
ESTIMATORS = {cls.name: cls for cls in (Enumeration, ScoreFunction, GumbelSoftmax)}


def from_name(name: str, **options) -> CategoricalEstimator:
    """`ESTIMATORS[name](**options)`, the options that class takes (others are ignored), e.g.
    `from_name("score_function", num_samples=2, baseline="leave_one_out", temperature=1.0)`."""
    if name not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {name!r}")
    cls = ESTIMATORS[name]
    fields = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in options.items() if key in fields})


def options(estimator: CategoricalEstimator) -> dict:
    """`estimator`'s name and options as a model's `get_config` records them (`estimator`,
    `num_samples`, `baseline`, `temperature`, `straight_through`; the defaults where it has none),
    so that `from_name(**options)`-style arguments rebuild it.

    >>> options(ScoreFunction(2, "leave_one_out"))["baseline"]
    'leave_one_out'
    """
    return dict(estimator=estimator.name, num_samples=getattr(estimator, "num_samples", 1),
                baseline=getattr(estimator, "baseline", "none"),
                temperature=getattr(estimator, "temperature", 1.0),
                straight_through=getattr(estimator, "straight_through", False))


def from_hparams(config) -> CategoricalEstimator:
    """The estimator a model config names, for the models that choose among estimators.

    Reads `config.estimator` (a name of `ESTIMATORS`) and only the fields that estimator takes:
    `latent_samples` (num_samples, sampled estimators), `baseline` (score function),
    `gumbel_temperature` and `straight_through` (Gumbel-softmax). A config that records its
    reads (`tflv.models.config.Reads`) so lists just the settings the model uses.
    """
    name = config.estimator
    if name not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {name!r}")
    settings = {}
    if ESTIMATORS[name].sampled:
        settings["num_samples"] = config.latent_samples
    if name == "score_function":
        settings["baseline"] = config.baseline
    if name == "gumbel_softmax":
        settings.update(temperature=config.gumbel_temperature,
                        straight_through=config.straight_through)
    return from_name(name, **settings)
