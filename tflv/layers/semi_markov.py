"""Keras 3 layer for a semi-Markov chain: log-partition and posterior marginals of segmentations.

`SemiMarkov` is `ForwardAlgorithm`'s counterpart for segmental chains (the latent templates of
Wiseman et al. 2018): from the log-potentials of a semi-Markov chain — initial θ_0 [K],
transition θ [K, K], segment φ [T, L, K] (the score of a segment of length l ending at t in
state k, from any network) and optionally length λ [K, L] — it returns

    log Z = log Σ_z exp(θ_0[k_1] + Σ_i θ[k_{i-1}, k_i] + Σ_i λ[k_i, l_i] + φ_{e_i}[l_i, k_i])

(the exact log marginal likelihood when the potentials are normalised log-probabilities), the
segment marginals ∂ log Z / ∂ φ and the per-position state marginals. It has no weights: it is
the inference step of a model. The math is `tflv.distributions.SemiMarkovChain`'s.

#### References

Wiseman, S., Shieber, S. M. & Rush, A. M. (2018). Learning neural templates for text
generation. EMNLP.

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.
"""
from __future__ import annotations

import keras

from tflv.distributions._forward import check_semiring
from tflv.distributions.semi_markov import SemiMarkovChain


@keras.saving.register_keras_serializable(package="tflv")
class SemiMarkov(keras.layers.Layer):
    """Chain potentials → (log Z `(batch_size,)`, segment marginals `(batch_size, T, L, K)`,
    state marginals `(batch_size, T, K)`).

    Args:
      semiring: "scaled" (the transition step is a matmul) or "log" (logsumexp).

    Call arguments:
      inputs: `[initial, transition, segment]` or `[initial, transition, segment, length]`
        log-potentials: initial `(batch_size, K)`, transition `(batch_size, K, K)`, segment
        `(batch_size, T, L, K)`, length `(batch_size, K, L)`.
      mask: `(batch_size, T)` bool, true for real positions (a prefix per row); or the list of
        the inputs' Keras masks, of which the segment potentials' is used.

    Examples:
    With every potential 0, Z counts the (segmentation, state sequence) pairs: 3 positions
    split as 1+1+1, 1+2 or 2+1 with K = 2 states per segment give 2³ + 2² + 2² = 16.

    >>> import tensorflow as tf
    >>> initial, transition = tf.zeros([1, 2]), tf.zeros([1, 2, 2])   # K = 2
    >>> segment = tf.zeros([1, 3, 2, 2])                              # T = 3, L = 2
    >>> log_z, segments, states = SemiMarkov(semiring="log")([initial, transition, segment])
    >>> print(round(float(tf.exp(log_z[0])), 3))
    16.0
    >>> loss = -tf.reduce_mean(log_z)     # a hidden semi-Markov model's negative log-likelihood
    """

    def __init__(self, semiring: str = "scaled", **kwargs):
        super().__init__(**kwargs)
        self.semiring = check_semiring(semiring, ("scaled", "log"))

    def call(self, inputs, mask=None):
        if len(inputs) not in (3, 4):
            raise ValueError("SemiMarkov takes [initial, transition, segment(, length)] "
                             f"log-potentials, got {len(inputs)} inputs")
        if isinstance(mask, (list, tuple)):
            mask = mask[2]
        result = SemiMarkovChain(*inputs, semiring=self.semiring).posterior(mask)
        return result.log_partition, result.segments, result.states

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(semiring=self.semiring)
        return config
