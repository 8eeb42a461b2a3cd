"""The one training loop, for every model and every `tf.distribute` strategy.

Each step runs `model.objective` on every replica (`strategy.run`), scales the per-example losses
by the *global* batch size (`tf.nn.compute_average_loss`), so that the replicas' gradients add up
to the gradient of the mean over the whole batch, and applies them with the Keras optimizer.
A model with an `apply_update(batch) -> Objective` method (LDA by online VB) is fitted by that
update instead of gradients; the step counter advances the same way.
Evaluation sums the model's per-example statistics over replicas and batches and hands the sums
to `model.metrics_from_sums`.

A step whose loss or any gradient is not finite (on any replica) is rejected before the weights
change, and the run stops naming the step; weights that are not finite are never checkpointed.
So the last checkpoint is finite and a rerun with other settings resumes from it.

Resumption is exact: the step counter and optimizer state live in the checkpoint, and the
training data is a deterministic, seeded, repeated stream from which a resumed run skips the
batches already consumed.

XLA (`jit_compile`): each replica's forward + backward pass and its optimizer update are
compiled with XLA (`tf.function(jit_compile=True)` inside `strategy.run`, as Keras' own
`fit` does), while the cross-replica reductions and the finiteness `tf.cond` stay in the graph
around them, so every strategy can use it. `"auto"` (the default) compiles where that is
faster and falls back to the plain graph step, with one log line saying why, where it is not or
cannot be: when the run is shorter than `AUTO_JIT_MIN_STEPS` (compiling would not pay), when
the training batches' shapes vary beyond the batch dimension (sentences of varying length: XLA
would compile once per shape), and when the model's step does not compile
(ops without XLA kernels; also a MirroredStrategy over logical CPU devices, where XLA reaches a
replica's variables from the first device only); that first attempt changes no variable (they
are put back).

Mixed precision (`mixed_precision="bfloat16"`): the model is built under Keras' `mixed_bfloat16`
dtype policy, so its layers compute in bfloat16 and keep float32 variables (the checkpoints
hold float32); the models cast to float32 where precision matters (log-probabilities,
softmax/logsumexp, KL terms, the structured recursions), so the loss is float32. bfloat16
has float32's exponent range, so unlike float16 it needs no loss scaling: the optimizer is
unchanged.
"""
from __future__ import annotations

import contextlib
import math
import re
import time
from typing import Callable, Mapping

import keras
import tensorflow as tf
from absl import logging

from trainers.checkpoints import Checkpoints, untracked_variables


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """One line per `every` steps: step, loss, tokens/s and ETA; also TensorBoard scalars."""

    def __init__(self, total_steps: int, start_step: int, writer, every: int,
                 print_fn: Callable[[str], None] = print):
        self.total, self.start, self.every = total_steps, start_step, every
        self.writer, self.print = writer, print_fn
        self.t0 = self.t_last = time.perf_counter()
        self.loss_sum = self.tokens = 0.0
        self.count = 0

    def update(self, step: int, loss: float, tokens: float) -> None:
        self.loss_sum += loss
        self.tokens += tokens
        self.count += 1
        if step % self.every and step != self.total:
            return
        now = time.perf_counter()
        mean_loss = self.loss_sum / self.count
        rate = self.tokens / max(now - self.t_last, 1e-9)
        per_step = (now - self.t0) / max(step - self.start, 1)
        self.print(f"step {step}/{self.total}  loss {mean_loss:.4f}  tokens/s {rate:,.0f}  "
                   f"elapsed {_format_duration(now - self.t0)}  "
                   f"eta {_format_duration(per_step * (self.total - step))}")
        with self.writer.as_default(step=step):
            tf.summary.scalar("loss", mean_loss)
            tf.summary.scalar("tokens_per_second", rate)
        self.t_last, self.loss_sum, self.tokens, self.count = now, 0.0, 0.0, 0


FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32, what TensorBoard stores

LEARNING_RATE_SCHEDULES = ("constant", "cosine", "linear")


def learning_rate_schedule(rate: float, schedule: str, total_steps: int):
    """Adam's step size η_s at optimizer step s of `total_steps`.

    constant: η_s = η; cosine: η_s = η (1 + cos(π s / S)) / 2 (Loshchilov & Hutter 2017, no
    restarts); linear: η_s = η (1 − s / S). The decayed ones reach 0 at s = S = total_steps; a
    resumed run picks the schedule up at its checkpointed step.

    Every choice is a Keras schedule (constant: a polynomial decay from η to η), never a float:
    Adam keeps a float step size as a variable, which would make a checkpoint written under one
    schedule unreadable under another (resuming, exporting or sampling a run without repeating
    its `--learning_rate_schedule`).
    """
    if schedule not in LEARNING_RATE_SCHEDULES:
        raise ValueError(f"learning-rate schedule must be one of "
                         f"{', '.join(LEARNING_RATE_SCHEDULES)}, got {schedule!r}")
    if schedule == "constant":
        return keras.optimizers.schedules.PolynomialDecay(rate, 1, end_learning_rate=rate)
    if total_steps < 1:
        raise ValueError(f"a {schedule} learning-rate schedule needs total_steps >= 1, got "
                         f"{total_steps}")
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, total_steps)
    return keras.optimizers.schedules.PolynomialDecay(rate, total_steps, end_learning_rate=0.0)


MIXED_PRECISION = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # → Keras dtype policy
JIT_COMPILE = ("auto", "true", "false")
# jit_compile=auto compiles a run of at least this many steps: XLA's compilation costs seconds
# to minutes on 2 CPU cores (tracing plus compiling the forward, backward and update), which a
# few steps do not win back.
AUTO_JIT_MIN_STEPS = 100


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to `name` (e.g. "mixed_bfloat16") inside the block only:
    the layers constructed (and built) there keep it; the process' policy is put back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def varying_shapes(element_spec) -> list[str]:
    """The tensors of a dataset's batches whose shape may change beyond the batch dimension
    (`name [None, None]`); XLA compiles once per shape."""
    specs = element_spec.items() if isinstance(element_spec, Mapping) else \
        enumerate(tf.nest.flatten(element_spec))
    return [f"{name} {spec.shape}" for name, spec in specs
            if spec.shape.rank is None or None in spec.shape.as_list()[1:]]


class Trainer:
    """Builds a model and optimizer under a strategy and trains, checkpoints and evaluates it.

    Args:
      build_model: `() -> LatentVariableModel`, called inside `strategy.scope()`.
      strategy: a `tf.distribute.Strategy`.
      global_batch_size: examples per step over all replicas.
      learning_rate, clip_norm: Adam's step size (a float or a Keras schedule,
        `learning_rate_schedule`) and global gradient-norm clipping (0: none).
      recipe_clip_norm: True: a model's own `clip_norm` (its training recipe's, e.g. ProdLDA's),
        where it has one that is not None, replaces `clip_norm` (the flag's default).
      mixed_precision: `MIXED_PRECISION` key: "float32", or "bfloat16" to build (and train) the
        model under Keras' `mixed_bfloat16` policy (float32 variables, no loss scaling).
      jit_compile: "auto" (XLA where the batch shapes are fixed and the step compiles, else
        the graph step, with one log line), "true" (XLA; an error if the step does not compile)
        or "false" (the graph step); also a bool.
    """

    def __init__(self, build_model, strategy: tf.distribute.Strategy, global_batch_size: int,
                 learning_rate, clip_norm: float, recipe_clip_norm: bool = False,
                 mixed_precision: str = "float32", jit_compile: str | bool = "auto"):
        if mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}, got "
                             f"{mixed_precision!r}")
        jit_compile = str(jit_compile).lower()
        if jit_compile not in JIT_COMPILE:
            raise ValueError(f"jit_compile must be one of {', '.join(JIT_COMPILE)}, got "
                             f"{jit_compile!r}")
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self.policy = MIXED_PRECISION[mixed_precision]
        self.jit_compile = jit_compile
        with strategy.scope(), dtype_policy(self.policy):
            self.model = build_model()
            if recipe_clip_norm and getattr(self.model, "clip_norm", None) is not None:
                clip_norm = self.model.clip_norm
            self.clip_norm = clip_norm
            self.optimizer = keras.optimizers.Adam(  # β1: the model's recipe's (ProdLDA 0.99)
                learning_rate, beta_1=getattr(self.model, "adam_beta_1", 0.9),
                global_clipnorm=clip_norm if clip_norm > 0 else None)
        self.rejected = tf.Variable(False, trainable=False, name="step_rejected")
        # Sentence batches vary in length: relax shapes instead of tracing every length.
        self._graph_step = tf.function(self._distributed_train_step, reduce_retracing=True)
        self._xla_replica_step = tf.function(self._replica_train_step, jit_compile=True)
        self._xla_replica_apply = tf.function(self._replica_apply, jit_compile=True)
        self._xla_step = tf.function(lambda batch: self._distributed_train_step(batch, xla=True),
                                     reduce_retracing=True)
        # The step function: settled by the first `_train_step` (None until then).
        self._step = self._graph_step if jit_compile == "false" else None
        self.compiled: bool | None = False if jit_compile == "false" else None
        self._xla_wanted = jit_compile == "true"  # auto: `train` decides from the run
        self._eval_step = tf.function(self._distributed_eval_step, reduce_retracing=True)

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def build(self, batch) -> None:
        """Creates the model's and optimizer's variables (mirrored) from one batch."""
        with self.strategy.scope(), dtype_policy(self.policy):
            self.model.objective(batch, training=False)
            self.optimizer.build(self.model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer,
            untracked_model_variables=untracked_variables(self.model))

    def _replica_train_step(self, batch):
        """(loss, tokens, gradients, non-finite count) of one replica; the update is applied
        by `_distributed_train_step` only when every replica's loss and gradients are finite."""
        if self.model.closed_form_update:  # fitted by closed-form updates (online VB, EM)
            objective = self.model.apply_update(batch)
            self.optimizer.iterations.assign_add(1)
            loss = tf.nn.compute_average_loss(objective.loss,
                                              global_batch_size=self.global_batch_size)
            return (loss, tf.reduce_sum(objective.stats.get("tokens", tf.ones_like(loss))),
                    None, _count_non_finite([loss]))
        with tf.GradientTape() as tape:
            objective = self.model.objective(batch, training=True)
            loss = tf.nn.compute_average_loss(objective.loss,
                                              global_batch_size=self.global_batch_size)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        grads = tape.gradient(loss, self.model.trainable_variables)
        tokens = objective.stats.get("tokens", tf.ones_like(objective.loss))
        return loss, tf.reduce_sum(tokens), grads, _count_non_finite([loss, *grads])

    def _replica_apply(self, grads):
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))

    def _distributed_train_step(self, batch, xla: bool = False):
        """One step: the loss and tokens summed over replicas.

        A step whose loss or any gradient is not finite on any replica is rejected before the
        weights change: no update, no optimizer step (`self.rejected` is set to True). A
        closed-form update (`apply_update`) changes the weights itself; its non-finite loss is
        flagged the same way, and `train` stops before any checkpoint is written.
        With `xla`, each replica's step and update are the XLA-compiled functions.
        """
        replica_step = self._xla_replica_step if xla else self._replica_train_step
        replica_apply = self._xla_replica_apply if xla else self._replica_apply
        loss, tokens, grads, non_finite = self.strategy.run(replica_step, args=(batch,))
        reduce = lambda t: self.strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
        rejected = reduce(non_finite) > 0
        self.rejected.assign(rejected)
        if grads is not None:  # the update runs in cross-replica context: every replica agrees
            tf.cond(rejected, lambda: None,
                    lambda: self.strategy.run(replica_apply, args=(grads,)))
        return reduce(loss), reduce(tokens)

    def _train_step(self, batch):
        """One step by the step function `jit_compile` chose (`self.compiled`); the first call
        settles the choice (auto outside `train`, which knows the run: the graph step).
        Returns (loss, tokens) summed over replicas."""
        if self._step is not None:
            return self._step(batch)
        if not self._xla_wanted:
            self._step, self.compiled = self._graph_step, False
            return self._step(batch)
        variables = [*self.model.variables, *self.optimizer.variables, self.rejected]
        before = [v.numpy() for v in variables]
        try:
            result = self._xla_step(batch)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                tf.errors.InternalError) as error:
            if self.jit_compile == "true":
                raise
            for variable, value in zip(variables, before):  # the attempt leaves no trace
                variable.assign(value)
            lines = [re.sub(r"^\(\d+\) [A-Z_]+: (\{\{[^}]*\}\} )?", "", line.strip())
                     for line in str(error).splitlines()]
            reason = next((line for line in lines if line and "root error" not in line),
                          type(error).__name__)
            self._use_graph(f"it does not compile ({type(error).__name__}: {reason[:300]})")
            return self._step(batch)
        self._step, self.compiled = self._xla_step, True
        return result

    def _use_graph(self, why: str, warn: bool = True) -> None:
        """The graph step from now on, and one log line saying `why` (a warning where the step
        does not compile, information where `auto` chose it)."""
        log = logging.warning if warn else logging.info
        log("jit_compile=auto: the training step runs as a graph, not XLA: %s", why)
        self._step, self.compiled = self._graph_step, False

    def _replica_eval_step(self, batch):
        stats = self.model.objective(batch, training=False).stats
        return {name: tf.reduce_sum(value) for name, value in stats.items()}

    def _distributed_eval_step(self, batch):
        stats = self.strategy.run(self._replica_eval_step, args=(batch,))
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in stats.items()}

    def train(self, dataset: tf.data.Dataset, total_steps: int, checkpoints: Checkpoints,
              progress: Progress, checkpoint_every: int,
              on_eval: Callable[[int], None] | None = None, eval_every: int = 0) -> None:
        """Trains from the current step to `total_steps` on the repeated `dataset`.

        `dataset` must yield the same batches in the same order on every run; the batches
        already consumed by the restored step are skipped.
        """
        start = self.step
        if self._step is None and self.jit_compile == "auto":
            varying = varying_shapes(dataset.element_spec)
            if varying:
                self._use_graph(f"the batch shapes vary ({', '.join(varying)}), and XLA would "
                                "compile once per shape (--jit_compile=true forces XLA)", False)
            elif total_steps - start < AUTO_JIT_MIN_STEPS:
                self._use_graph(f"{total_steps - start} steps to run do not repay XLA's "
                                f"compilation (auto compiles runs of {AUTO_JIT_MIN_STEPS} steps "
                                "or more; --jit_compile=true forces XLA)", False)
            else:
                self._xla_wanted = True
        data = iter(self.strategy.experimental_distribute_dataset(dataset.skip(start)))
        for step in range(start + 1, total_steps + 1):
            loss, tokens = self._train_step(next(data))
            loss = float(loss)
            if bool(self.rejected.numpy()) or not math.isfinite(loss):
                raise FloatingPointError(
                    f"step {step}: the loss ({loss}) or a gradient is not finite; the step was "
                    f"rejected and the run stopped{self._kept(checkpoints)}. Rerun with other "
                    "settings (e.g. a lower --learning_rate or --clip_norm) to resume from it")
            progress.update(step, loss, float(tokens))
            if step % checkpoint_every == 0 or step == total_steps:
                bad = [v.path for v in self.model.variables if not _all_finite(v)]
                if bad:  # a finite gradient may still overflow a weight: never save that
                    raise FloatingPointError(
                        f"step {step}: weights {', '.join(bad[:5])} are not finite; not saved, "
                        f"the run stopped{self._kept(checkpoints)}. Rerun with other settings "
                        "(e.g. a lower --learning_rate) to resume from it")
                checkpoints.save(step)
            if on_eval is not None and eval_every and step % eval_every == 0 and step != total_steps:
                on_eval(step)

    @staticmethod
    def _kept(checkpoints: Checkpoints) -> str:
        if not checkpoints.chief:
            return ""
        latest = checkpoints.latest
        return f"; the last checkpoint {latest} is kept" if latest else " before any checkpoint"

    def evaluate(self, dataset: tf.data.Dataset, max_batches: int = 0) -> dict[str, float]:
        """The model's metrics on `dataset` (every example once), from summed statistics."""
        if max_batches:
            dataset = dataset.take(max_batches)
        sums: dict[str, float] = {}
        for batch in self.strategy.experimental_distribute_dataset(dataset):
            for name, value in self._eval_step(batch).items():
                sums[name] = sums.get(name, 0.0) + float(value)
        if not sums or sums.get("tokens", 1) == 0:  # never a perfect-looking metric over nothing
            raise ValueError("evaluation dataset is empty (0 tokens)")
        return self.model.metrics_from_sums(sums)


def _count_non_finite(tensors) -> tf.Tensor:
    """float32 scalar: how many of `tensors` (None or IndexedSlices allowed) hold a NaN or inf."""
    values = [t.values if isinstance(t, tf.IndexedSlices) else t for t in tensors if t is not None]
    return tf.add_n([1.0 - tf.cast(tf.reduce_all(tf.math.is_finite(v)), tf.float32)
                     for v in values])


def _all_finite(variable) -> bool:
    value = tf.convert_to_tensor(variable)
    return not value.dtype.is_floating or bool(tf.reduce_all(tf.math.is_finite(value)))


def write_metrics(writer, step: int, metrics: Mapping[str, float], prefix: str) -> None:
    with writer.as_default(step=step):
        for name, value in metrics.items():
            # TensorBoard stores float32: a value beyond its range (a perplexity of 1e300) is
            # drawn as ±inf, where converting it would raise; the log line keeps the value.
            value = float(value)
            if math.isfinite(value) and abs(value) > FLOAT32_MAX:
                value = math.copysign(math.inf, value)
            tf.summary.scalar(f"{prefix}/{name}", value)
    logging.info("%s at step %d: %s", prefix, step, dict(metrics))
