"""The contract between tflv models and the one training loop in `trainers/`.

Every model is a `keras.Model` that reads one form of batch from `data.Corpus.dataset` and returns,
per example, the loss to minimise and the statistics an evaluation sums over a whole split:

    Config                                    a frozen dataclass of its hyperparameters
    from_corpus(corpus, config=None, **fields) -> model   (or the constructor, explicit sizes)
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

from tflv.layers.precision import full_precision  # noqa: F401 (the models import it from here)
from tflv.models.config import ConfigError, ModelConfig, Reads


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


class LatentVariableModel(keras.Model):
    """Base class of every tflv model: the contract the trainer and Keras's own loop rely on.

    Declared here, with defaults, instead of being discovered by `hasattr`:

    - `Config`: a frozen dataclass (`tflv.models.config.ModelConfig`) of the hyperparameters,
      with documented defaults; `from_corpus(corpus, config, **fields)` builds the model with
      the sizes (vocabulary, tags) read from a `data.Corpus`.
    - `input_form`: the form of batch it reads (a `data.Corpus` form: `"stream"`,
      `"sentences"`, `"bow"`, `"tokens"`, `"parallel"`).
    - `objective(batch, training) -> Objective` and `metrics_from_sums(sums) -> metrics`.
    - `closed_form_update`: True for a model fitted by an EM-style update
      `apply_update(batch) -> Objective` (one step from the global batch, in replica context)
      instead of gradients (`lda`, `hmm` with `hmm_training="em"`); such a model defines `apply_update`.
    - `serving_signatures(batcher) -> {name: tf.function}`: what an exported SavedModel serves
      beside `score` (default: nothing more).
    - `can_sample_prior`: True for a model with `sample_prior(start_ids, max_length,
      temperature, seed) -> ids [N, max_length]`, sentences x ~ p(x | z), z ~ p(z);
      `can_interpolate`: True for one with `homotopy(batch, num_points, max_length, ...)`.
    - `evaluate_corpus(corpus, split, batch_size)`: metrics of whole predictions (default: none).
    - `adam_beta_1`: Adam's β1 of the model's training recipe (default 0.9).

    Keras's loop: `compile(optimizer)` then `fit(dataset)` / `evaluate(dataset)` on batches of
    `input_form` (a `data.Corpus.dataset`) train and score with `objective` as the trainer
    does: the loss is the mean of `Objective.loss` over the global batch (replicas of a
    `tf.distribute` strategy add up to the one-device gradient), `self.losses` scaled alike;
    `Objective.stats` are summed into one `keras.metrics.Sum` each, and the reported metrics are
    `metrics_from_sums` of the sums over the whole `evaluate` run (or epoch), e.g. the
    perplexity exp(Σ nll / Σ tokens), never a mean of per-batch perplexities. A
    `closed_form_update` model trains the same way by `apply_update` (the optimizer only counts
    steps), on one replica: under a multi-replica strategy its `fit` is trainer-only and says so.

    Example:

    >>> import data, keras
    >>> from tflv.models import RNNLM
    >>> corpus = data.load("synthetic_hmm")
    >>> model = RNNLM.from_corpus(corpus, embed_dim=8, hidden_dim=8)
    >>> model.compile(keras.optimizers.Adam(1e-2))
    >>> train = corpus.dataset("train", "stream", 8, seq_len=10).take(2)
    >>> history = model.fit(train, verbose=0)
    >>> sorted(model.evaluate(train, verbose=0, return_dict=True))
    ['loss', 'nll', 'ppl', 'tokens']
    """

    Config: type[ModelConfig] = ModelConfig
    # The form of batch the model reads: it trains on any corpus that offers this form (a
    # bundled one or a user's `text:DIR`, `parallel:DIR`, `tagged:DIR`); the trainer checks it.
    input_form: str = ""
    # The bundled corpora (names of `data.DATASETS`) it is documented and tested on.
    datasets: tuple[str, ...] = ()
    # True when the `nll` statistic is a Monte Carlo estimate (two evaluations differ).
    stochastic_score: bool = False
    # True when fitted by `apply_update` (an EM-style update) rather than by gradients.
    closed_form_update: bool = False
    # True when the model has `sample_prior` / `homotopy` (see the class docstring).
    can_sample_prior: bool = False
    can_interpolate: bool = False
    # True when `evaluate_corpus` sets weights that the serving signatures read and training
    # does not (neural_template: the templates `generate` fills); the trainer then saves its
    # final checkpoint again after the final evaluation, so that the run's export serves them.
    evaluation_sets_weights: bool = False
    # Adam's β1 that the model's training recipe asks of the trainer's optimizer (ProdLDA's
    # Srivastava & Sutton recipe: 0.99); with `fit`, pass it to the optimizer you compile.
    adam_beta_1: float = 0.9

    @classmethod
    def from_corpus(cls, corpus, config: ModelConfig | None = None, *,
                    read: set[str] | None = None, **fields) -> "LatentVariableModel":
        """The model with `config` (default `cls.Config()`) changed by `fields`, sized for
        `corpus` (`corpus.info["vocab_size"]` etc.).

        Args:
          corpus: a `data.Corpus` (only its `info`, vocabularies and, for some models, training
            split are read).
          config: a `cls.Config`.
          read: if given, receives the names of the config fields these settings use (e.g.
            `vmf_concentration` only with `latent="vmf"`).
          **fields: config fields to change, e.g. `embed_dim=64`.

        Raises:
          ConfigError: a field unknown to `cls.Config` or a value out of its range.
        """
        config = cls.Config() if config is None else config
        if not isinstance(config, cls.Config):
            raise ConfigError(f"{cls.__name__}.from_corpus takes a {cls.__name__}.Config, got "
                              f"{type(config).__qualname__}")
        config = config.replace(**fields) if fields else config
        return cls._from_config(corpus, Reads(config, set() if read is None else read))

    @classmethod
    def _from_config(cls, corpus, config: ModelConfig) -> "LatentVariableModel":
        """`from_corpus` with `config` (whose reads are recorded); subclasses implement it."""
        raise NotImplementedError(f"{cls.__name__} has no from_corpus")

    def objective(self, batch: dict[str, tf.Tensor], training: bool = False) -> Objective:
        raise NotImplementedError

    def metrics_from_sums(self, sums: Mapping[str, float]) -> dict[str, float]:
        raise NotImplementedError

    def serving_signatures(self, batcher) -> dict:
        """Signatures an exported SavedModel serves beside `score` (`tflv.models.serving`)."""
        del batcher
        return {}

    def prepare_export(self, corpus, batch_size: int = 64) -> None:
        """Sets, from `corpus`, what the serving signatures read but training does not, where
        the model holds none yet (neural_template: its templates); `export_saved_model` calls
        it first. The default has none."""
        del corpus, batch_size

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

    # -- Keras's own loop ---------------------------------------------------------------------

    def compile(self, optimizer="adam", jit_compile=False, **kwargs):
        """`keras.Model.compile` without a loss (the model's `objective` is the loss);
        `jit_compile` defaults to False (the structured recursions are `tf.while_loop`s)."""
        if kwargs.get("loss") is not None:
            raise ValueError(f"{type(self).__name__} trains on its own objective; compile "
                             "it without a loss")
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def _prepare_keras_loop(self, data) -> None:
        """Builds the variables and one `keras.metrics.Sum` per statistic from a first batch
        (Keras would otherwise trace `call` on symbolic inputs)."""
        if getattr(self, "_stat_sums", None) is not None:
            return
        if not isinstance(data, tf.data.Dataset):
            raise TypeError(f"{type(self).__name__}.fit/evaluate take a tf.data.Dataset of "
                            f"batches of form {self.input_form!r} (data.Corpus.dataset), got "
                            f"{type(data).__name__}")
        with self.distribute_strategy.scope():
            # The call must not change a built model (a seed generator's state would advance):
            # its variables get their values back, as if it had not run.
            held = [(variable, tf.identity(variable)) for variable in self.variables]
            stats = self.objective(next(iter(data)), training=False).stats
            for variable, value in held:
                variable.assign(value)
            # Every weight exists now, as the trainer's `build` relies on; a layer still
            # unbuilt is unused (MoSLM's replaced decoder) and must not trigger Keras's build.
            for layer in self._flatten_layers():
                layer.built = True
            self._loss_mean = keras.metrics.Mean(name="loss")
            self._stat_sums = {name: keras.metrics.Sum(name=name) for name in sorted(stats)}
        self._metric_names = ["loss", *self.metrics_from_sums(
            {name: 1.0 for name in self._stat_sums})]

    def fit(self, x=None, *args, **kwargs):
        if self.closed_form_update and self.distribute_strategy.num_replicas_in_sync > 1:
            raise NotImplementedError(
                f"{type(self).__name__} is fitted by closed-form updates (apply_update), which "
                "Keras's fit runs on one replica only (under a strategy of "
                f"{self.distribute_strategy.num_replicas_in_sync} replicas its gather "
                "collectives are not ordered with Keras's); train it with trainers.train "
                "(tflv-train) on several replicas, or fit it without a multi-replica strategy")
        self._prepare_keras_loop(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._prepare_keras_loop(x)
        return super().evaluate(x, *args, **kwargs)

    @property
    def metrics(self):
        trackers = getattr(self, "_stat_sums", None)
        return [] if trackers is None else [self._loss_mean, *trackers.values()]

    def get_metrics_result(self):
        """The loss averaged over the steps so far and `metrics_from_sums` of the summed
        statistics (read across replicas)."""
        sums = {name: float(metric.result()) for name, metric in self._stat_sums.items()}
        return {"loss": float(self._loss_mean.result()), **{
            name: float(value) for name, value in self.metrics_from_sums(sums).items()}}

    def _update_metrics(self, objective: Objective, loss: tf.Tensor) -> dict[str, tf.Tensor]:
        self._loss_mean.update_state(loss * tf.cast(
            tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype))
        for name, metric in self._stat_sums.items():
            metric.update_state(tf.reduce_sum(objective.stats[name]))
        names = list(self._stat_sums)
        results = [self._stat_sums[name].result() for name in names]

        def from_sums(*values):  # eager: metrics_from_sums is Python arithmetic
            metrics = self.metrics_from_sums({n: float(v) for n, v in zip(names, values)})
            return [float(metrics[name]) for name in self._metric_names[1:]]

        values = tf.py_function(from_sums, results, [tf.float32] * (len(self._metric_names) - 1))
        return {"loss": self._loss_mean.result(), **dict(zip(self._metric_names[1:], values))}

    def train_step(self, data):
        """One step on the replica's part of the global batch: the gradient of the mean loss
        (or `apply_update`), then the metrics."""
        if self.closed_form_update:
            objective = self.apply_update(data)
            self.optimizer.iterations.assign_add(1)
            loss = tf.nn.compute_average_loss(objective.loss)
            return self._update_metrics(objective, loss)
        with tf.GradientTape() as tape:
            objective = self.objective(data, training=True)
            loss = tf.nn.compute_average_loss(objective.loss)
            if self.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.losses))
            # mixed_float16: Keras's compile wraps the optimizer in a LossScaleOptimizer, whose
            # scaled loss keeps float16 gradients from underflowing (`apply` unscales them)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._update_metrics(objective, loss)

    def test_step(self, data):
        objective = self.objective(data, training=False)
        return self._update_metrics(objective, tf.nn.compute_average_loss(objective.loss))
