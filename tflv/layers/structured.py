"""Keras 3 layers for structured latent variables: exact chain inference and mean field.

`ForwardAlgorithm` turns the log-potentials of a linear chain (from any network: a neural HMM's
per-position emission scores, per-step transition scores) into the log-partition
log Z = log Σ_z exp score(z) by the forward algorithm (log p(x) when the potentials are
normalised log-probabilities, Rabiner 1989) and the posterior marginals ∂ log Z / ∂ potentials
(Eisner 2016). It has no weights: it is the inference step of a model.

`MeanField` holds a factorial HMM (L chains of K states with summed categorical emission
logits over V tokens, Ghahramani & Jordan 1997) and returns its structured mean-field ELBO
after a fixed number of coordinate-ascent sweeps, run by a `tf.while_loop` inside the graph,
with the factorised posterior marginals q(z^l_t = k). Training on -ELBO fits the model by
variational EM.

Both are computed by `tflv.distributions.HMM` / `FactorialHMM`; see those modules for the math.

#### References

Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in speech
recognition. Proceedings of the IEEE 77(2).

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Ghahramani, Z. & Jordan, M. I. (1997). Factorial hidden Markov models. Machine Learning 29.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tflv.distributions._forward import SUM_SEMIRINGS, check_semiring
from tflv.distributions.factorial_hmm import FactorialHMM
from tflv.distributions.hmm import HMM


@keras.saving.register_keras_serializable(package="tflv")
class ForwardAlgorithm(keras.layers.Layer):
    """Chain potentials → (log Z `(batch_size,)`, marginals `(batch_size, T, K)`[, pairwise]).

    Args:
      per_step_transitions: False: the transition input is `(batch_size, K, K)`, shared by
        the steps; True: `(batch_size, T-1, K, K)`, one matrix per step.
      semiring: "auto" (default), "scaled" or "log"; all exact (`tflv.distributions.HMM`).
      pairwise: also return p(z_{t-1}, z_t) `(batch_size, T-1, K, K)`.

    Call arguments:
      inputs: `[initial, transition, emission]` log-potentials: initial `(batch_size, K)`,
        transition as `per_step_transitions` says, emission `(batch_size, T, K)`; T may be
        0 or 1, also when unknown until the call.
      mask: `(batch_size, T)` bool, true for real positions (a prefix per row); or the list
        of the inputs' Keras masks, of which the emission's is used.

    Examples:
    >>> initial = tf.math.log(tf.fill([2, 3], 1 / 3))          # uniform over K = 3 states
    >>> transition = tf.math.log(tf.fill([2, 3, 3], 1 / 3))
    >>> emission = tf.math.log(tf.fill([2, 4, 3], 0.5))         # p(x_t | z_t) = 1/2, T = 4
    >>> mask = tf.constant([[True] * 4, [True, True, False, False]])
    >>> log_z, marginals = ForwardAlgorithm()([initial, transition, emission], mask=mask)
    >>> print((log_z / tf.math.log(0.5)).numpy())               # log Z = (real positions) · log 1/2
    [4. 2.]
    >>> loss = -tf.reduce_mean(log_z)     # a neural HMM's negative log-likelihood
    """

    def __init__(self, per_step_transitions: bool = False, semiring: str = "auto",
                 pairwise: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.per_step_transitions = bool(per_step_transitions)
        self.semiring = check_semiring(semiring, SUM_SEMIRINGS)
        self.pairwise = pairwise

    def call(self, inputs, mask=None):
        if len(inputs) != 3:
            raise ValueError("ForwardAlgorithm takes [initial, transition, emission] "
                             f"log-potentials, got {len(inputs)} inputs")
        if isinstance(mask, (list, tuple)):
            mask = mask[-1]
        hmm = HMM.from_log_potentials(*inputs, per_step_transitions=self.per_step_transitions,
                                      semiring=self.semiring)
        result = hmm.posterior(mask=mask, pairwise=self.pairwise)
        if self.pairwise:
            return result.log_prob, result.unary, result.pairwise
        return result.log_prob, result.unary

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(per_step_transitions=self.per_step_transitions, semiring=self.semiring,
                      pairwise=self.pairwise)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class MeanField(keras.layers.Layer):
    """Tokens `(batch_size, T)` → (ELBO `(batch_size,)`, q `(batch_size, T, L, K)`).

    Args:
      num_chains: L, the number of Markov chains.
      num_states: K, the states of each chain.
      vocab_size: V.
      num_iterations: coordinate-ascent sweeps per call.
      semiring: "auto" (default), "scaled" or "log", for the chains' forward passes.
      logits_initializer: initializer of the three logit tensors.

    Call arguments:
      inputs: int token ids `(batch_size, T)`.
      mask: `(batch_size, T)` bool, true for real tokens (a prefix per row), or None.

    Examples:
    >>> tokens = tf.constant([[5, 7, 9], [2, 2, 0]])
    >>> elbo, q = MeanField(num_chains=3, num_states=4, vocab_size=10)(tokens)
    >>> elbo.shape, q.shape                 # q(z_t^(l) = k): (batch_size, T, L, K)
    (TensorShape([2]), TensorShape([2, 3, 3, 4]))
    >>> print(tf.reduce_sum(q, -1).numpy().min().round(5))   # each chain's marginal sums to 1
    1.0
    >>> loss = -tf.reduce_mean(elbo)        # e.g. model.add_loss(loss) in a Keras model
    """

    def __init__(self, num_chains: int, num_states: int, vocab_size: int,
                 num_iterations: int = 10, semiring: str = "auto",
                 logits_initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_chains", num_chains), ("num_states", num_states),
                            ("vocab_size", vocab_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if int(num_iterations) < 0:
            raise ValueError(f"num_iterations must be >= 0, got {num_iterations}")
        self.num_chains, self.num_states, self.vocab_size = num_chains, num_states, vocab_size
        self.num_iterations = num_iterations
        self.semiring = check_semiring(semiring, SUM_SEMIRINGS)
        self.logits_initializer = keras.initializers.get(logits_initializer)

    def build(self, input_shape):
        chains, states = self.num_chains, self.num_states
        self.initial_logits = self.add_weight(
            shape=(chains, states), initializer=self.logits_initializer, name="initial_logits")
        self.transition_logits = self.add_weight(
            shape=(chains, states, states), initializer=self.logits_initializer,
            name="transition_logits")
        self.emission_logits = self.add_weight(
            shape=(chains, states, self.vocab_size), initializer=self.logits_initializer,
            name="emission_logits")

    def call(self, inputs, mask=None):
        model = FactorialHMM(self.initial_logits, self.transition_logits, self.emission_logits,
                             semiring=self.semiring)
        result = model.mean_field(tf.cast(inputs, tf.int32), mask, self.num_iterations)
        return result.elbo, result.marginals

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(num_chains=self.num_chains, num_states=self.num_states,
                      vocab_size=self.vocab_size, num_iterations=self.num_iterations,
                      semiring=self.semiring,
                      logits_initializer=keras.initializers.serialize(self.logits_initializer))
        return config
