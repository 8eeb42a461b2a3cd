"""The contract between tflv models and the one training loop in `trainers/`.

Every model is a `keras.Model` that reads one form of batch from `data.Corpus.dataset` and returns,
per example, the loss to minimise and the statistics an evaluation sums over a whole split:

    objective(batch, training) -> Objective(loss [B], stats {name: [B]})
    metrics_from_sums({name: float}) -> {metric: float}
    evaluate_corpus(corpus, split, batch_size) -> {metric: float}   (optional: BLEU, tag accuracy)

The trainer averages `loss` over the *global* batch (so replicas of a `tf.distribute` strategy add
up to the single-device gradient), sums `stats` over replicas and batches for evaluation, and
turns the sums into the reported metrics (e.g. perplexity = exp(nll / tokens)) with
`metrics_from_sums`. Every model reports two statistics by name: `nll`, the per-example
−log p(x) (or its variational / importance-sampled bound), and `tokens`, the number of predicted
tokens; `tokens` drives the tokens/s progress figure and `−nll` is what an exported SavedModel's
`score` signature returns.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import keras
import tensorflow as tf


@dataclasses.dataclass
class Objective:
    """What a model's `objective` returns.

    Attributes:
      loss: float32 `[B]`, the per-example quantity to minimise (e.g. NLL per token of the row,
        or the negative ELBO).
      stats: `{name: float32 [B]}`, per-example quantities summed over an evaluation split
        (e.g. `nll`, `tokens`, `kl`).
    """
    loss: tf.Tensor
    stats: dict[str, tf.Tensor]


HALF_PRECISION = (tf.bfloat16, tf.float16)


def full_precision(structure):
    """`structure` (a tensor or a nest of them) with every half-precision float tensor
    (bfloat16, float16) cast to float32; other tensors (float32, float64, integers) as they are.

    Under a mixed-precision Keras policy (`mixed_bfloat16`, `mixed_float16`) layers compute
    and return half-precision tensors while their variables stay float32. The models pass
    what a layer returns through this before it becomes a log-probability, a softmax or
    logsumexp, a KL term or the input of a structured recursion, so that those — and the loss —
    are computed in float32 (Micikevicius et al. 2018, "Mixed Precision Training", ICLR: the
    reductions and losses stay in single precision).

        >>> cast = full_precision({"logits": tf.zeros([2], tf.bfloat16),
        ...                        "ids": tf.zeros([2], tf.int32)})
        >>> cast["logits"].dtype.name, cast["ids"].dtype.name
        ('float32', 'int32')
    """
    return tf.nest.map_structure(
        lambda t: tf.cast(t, tf.float32) if getattr(t, "dtype", None) in HALF_PRECISION else t,
        structure)


class HParams(Mapping[str, Any]):
    """Read-only hyperparameters that remember which names a model read.

    The trainer passes every model flag; after the model is built it refuses flags the user set
    that the model never read, instead of silently ignoring them.
    """

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(f"unknown hyperparameter {name!r}; known: {sorted(self._values)}")
        self.read.add(name)
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class LatentVariableModel(keras.Model):
    """Base class of every tflv model (see the module docstring for the contract).

    Subclasses set `input_form` (a `data.Corpus` form such as `"stream"`, `"sentences"`, `"bow"`)
    and implement `from_corpus`, `objective` and `metrics_from_sums`.
    """

    # The form of batch the model reads: it trains on any corpus that offers this form (a
    # bundled one or a user's `text:DIR`, `parallel:DIR`, `tagged:DIR`); the trainer checks it.
    input_form: str = ""
    # The bundled corpora (names of `data.DATASETS`) it is documented and tested on.
    datasets: tuple[str, ...] = ()
    # True when the `nll` statistic is a Monte Carlo estimate (two evaluations differ).
    stochastic_score: bool = False

    @classmethod
    def from_corpus(cls, corpus, hparams: HParams) -> "LatentVariableModel":
        raise NotImplementedError

    def objective(self, batch: dict[str, tf.Tensor], training: bool = False) -> Objective:
        raise NotImplementedError

    def metrics_from_sums(self, sums: Mapping[str, float]) -> dict[str, float]:
        raise NotImplementedError

    def evaluate_corpus(self, corpus, split: str, batch_size: int) -> dict[str, float]:
        """Metrics that need whole predictions rather than summed statistics.

        E.g. BLEU of decoded translations, or many-to-one accuracy of Viterbi tags. Runs on one
        device after training, under the run's TensorBoard writer, so it may also draw what it
        finds (`tflv.summaries`: topics, a state-by-tag heat map); the default has none.
        """
        del corpus, split, batch_size
        return {}

    def call(self, batch, training=False):
        return self.objective(batch, training=training).loss
