"""Trains any tflv model on any corpus, on one device, all local GPUs or several machines.

    python -m trainers.train --model=rnnlm --dataset=ptb [--data_dir=DIR] [--train_steps=N]
        [--batch_size=N] [--strategy=default|mirrored|multi_worker] [--model_dir=DIR]
        [--export_dir=DIR]

(also installed as `tflv-train`). It resumes from the newest readable checkpoint in
`--model_dir`, prints a progress line (step, loss, tokens/s, ETA), writes TensorBoard summaries
under `--model_dir` (learning curves; after evaluation what a model draws of its results, e.g.
topics or the state-by-tag confusion, and samples from the prior), evaluates on the validation
and test splits, and ends with one line `RESULT {json}` holding the test metrics (validation
metrics prefixed `valid_`).
"""
from __future__ import annotations

import json
import numbers
import os
import sys
import time

import keras
import tensorflow as tf
from absl import app, logging

from tflv.models import ConfigError, get_model_class, serving
from trainers import cli, corpus_flags
from trainers import flags as tflv_flags
from trainers.checkpoints import (Checkpoints, ModelDirBusyError, ModelDirLock,
                                  remove_stale_temp_folders)
from trainers.collapse import collapse_warning
from trainers.export import TextBatcher, export_model
from trainers.loop import Progress
from trainers.run import (evaluate_splits, kl_warmup_steps, load_corpus, make_trainer,
                          with_new_hparams)
from trainers.run_flags import hparam_defaults, run_description
from trainers.run_record import claim_model_dir
from trainers.strategy import is_chief, is_worker_failure, make_strategy, split_cpu, task_id

FLAGS = tflv_flags.FLAGS


def print_eval(step: int, metrics: dict) -> None:
    """One progress line for a validation run during training (--eval_every)."""
    shown = "  ".join(f"{name} {value:.6g}" for name, value in metrics.items()
                      if isinstance(value, numbers.Real))
    print(f"eval at step {step}: {shown}", flush=True)


def check_hparams_used(run: dict) -> None:
    """Refuses a model hyperparameter flag given on the command line that the model never read
    (`run["hparams"]`, narrowed by `trainers.run.make_trainer`)."""
    unused = [name for name in tflv_flags.MODEL_FLAGS
              if FLAGS[name].present and name not in run["hparams"]]
    if unused:
        raise app.UsageError(f"--model={run['model']} does not use "
                             + ", ".join(f"--{name}" for name in unused))


def float32_copy(run: dict, corpus, strategy: tf.distribute.Strategy, trained: Trainer) -> Trainer:
    """A float32 `Trainer` of `run` over `corpus` holding `trained`'s weights and step (the
    variables of a mixed-precision model are float32 already: they are copied as they are)."""
    _, trainer, _ = make_trainer(dict(run), corpus, strategy)
    for target, source in zip(trainer.model.variables, trained.model.variables):
        target.assign(source)
    trainer.optimizer.iterations.assign(trained.optimizer.iterations)
    return trainer


def write_prior_samples(model, corpus, writer, step: int, seed: int, count: int = 8,
                        length: int = 30):
    """Prints and writes (text summary `samples/prior`) `count` sentences x ~ p(x | z),
    z ~ p(z) of a model that has `sample_prior` (`sentence_vae`, `mixture_lm`)."""
    if not model.can_sample_prior:
        return
    sample = serving.sample_signature(TextBatcher(corpus, "sentences"), model.sample_prior)
    texts = sample(tf.constant(count), tf.constant(length), tf.constant(1.0),
                   tf.constant([seed, step], tf.int32))["text"]
    for text in texts.numpy():
        print(f"sample  {text.decode()}", flush=True)
    with writer.as_default(step=step):
        tf.summary.text("samples/prior", texts)


def main(argv):
    del argv
    split_cpu(FLAGS.num_cpu_devices)
    try:  # before any op: multi-worker needs it first
        strategy = make_strategy(FLAGS.strategy, FLAGS.worker_timeout)
    except tf.errors.OpError as err:
        if not is_worker_failure(err):
            raise
        _stop_lost_worker(err, "could not join the other workers within "
                          f"--worker_timeout={FLAGS.worker_timeout:g}s", None)
    keras.utils.set_random_seed(FLAGS.seed)
    chief = is_chief(strategy)
    print(cli.device_line(strategy), flush=True)
    model_dir = FLAGS.model_dir or os.path.join(
        "runs", f"{FLAGS.model}_{corpus_flags.run_name(FLAGS.dataset)}")
    FLAGS.kl_warmup_steps = kl_warmup_steps(model_dir, FLAGS.kl_warmup_steps,
                                            tflv_flags.default_kl_warmup_steps(FLAGS.train_steps))
    lock = None
    if chief:  # one writer per model_dir, refused at once
        try:
            lock = ModelDirLock(model_dir).acquire()
        except ModelDirBusyError as err:
            raise SystemExit(f"tflv-train: {err}") from None
        remove_stale_temp_folders(model_dir)
    try:
        train_and_evaluate(strategy, chief, model_dir)
    except (ValueError, FloatingPointError) as err:
        if not isinstance(err, FloatingPointError) and "--model_dir=" not in str(err):
            raise
        raise SystemExit(f"tflv-train: {err}") from None  # a refused resume, a rejected step
    except tf.errors.OpError as err:
        if FLAGS.strategy != "multi_worker" or not is_worker_failure(err):
            raise
        if lock is not None:
            lock.release()
        _stop_lost_worker(err, "lost a worker", model_dir)
    finally:
        if lock is not None:
            lock.release()


def _stop_lost_worker(err: tf.errors.OpError, what: str, model_dir: str | None):
    """Ends this worker of a multi-worker job that lost a peer, with a message (exit code 3)."""
    latest = tf.train.latest_checkpoint(model_dir) if model_dir else None
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [""]
    cause = next((line for line in lines if any(
        word in line for word in ("abort", "unhealthy", "reset", "unavailable", "deadline",
                                  "Deadline", "timed out", "heartbeat"))), lines[0])
    print(f"tflv-train: the multi-worker job {what} ({type(err).__name__}: {cause[:300]}); "
          "this worker stops. "
          + (f"The last checkpoint is {latest}. " if latest else "")
          + "Restart every worker (the same command and TF_CONFIG) to resume.",
          file=sys.stderr, flush=True)
    os._exit(3)  # the runtime may wait on the lost peer at interpreter exit


def train_and_evaluate(strategy: tf.distribute.Strategy, chief: bool, model_dir: str) -> None:
    """Trains (resuming what `model_dir` holds), evaluates, exports; prints the RESULT line."""
    run = run_description()
    corpus = load_corpus(run, FLAGS.data_dir)
    corpus_flags.check_model_fits(run["model"], get_model_class(run["model"]), run["dataset"],
                                  corpus)
    try:
        corpus, trainer, train_ds = make_trainer(run, corpus, strategy,
                                                 recipe_clip_norm=not FLAGS["clip_norm"].present)
    except ConfigError as err:  # names its flags
        raise app.UsageError(tflv_flags.as_flags(err)) from None
    check_hparams_used(run)
    if trainer.policy != "float32":  # evaluated and exported in float32, with the trained weights
        trainer = float32_copy(run, corpus, strategy, trainer)
    if chief:
        defaults = hparam_defaults()
        claim_model_dir(model_dir, run, corpus, upgrade=lambda held: with_new_hparams(
            held, {name: defaults[name] for name in run["hparams"]}))
    checkpoints = Checkpoints(trainer.checkpoint, model_dir, chief, task_id(strategy))
    restored = checkpoints.restore_latest(model_dir)
    if restored:
        print(f"resumed from {restored} at step {trainer.step}", flush=True)
    writer = (tf.summary.create_file_writer(os.path.join(model_dir, "summaries"))
              if chief else tf.summary.create_noop_writer())
    eval_sizes = {"batch_size": FLAGS.eval_batch_size, "max_batches": FLAGS.max_eval_batches}
    start = time.perf_counter()
    trainer.train(train_ds, FLAGS.train_steps, checkpoints,
                  Progress(FLAGS.train_steps, trainer.step, writer, FLAGS.log_every,
                           print_fn=lambda line: print(line, flush=True)),
                  FLAGS.checkpoint_every, eval_every=FLAGS.eval_every,
                  on_eval=lambda step: print_eval(step, evaluate_splits(
                      trainer, corpus, writer, run["sequence"], ("valid",), **eval_sizes)))
    result = {"model": FLAGS.model, "dataset": FLAGS.dataset, "step": trainer.step,
              "train_seconds": round(time.perf_counter() - start, 1),
              **evaluate_splits(trainer, corpus, writer, run["sequence"], **eval_sizes)}
    if trainer.model.evaluation_sets_weights:  # e.g. templates: the run's export serves them
        checkpoints.save(trainer.step)
        if chief:
            print(f"saved {checkpoints.latest} again with the weights the evaluation set",
                  flush=True)
    warning = collapse_warning(FLAGS.model, result)
    if warning:
        logging.warning(warning)
    write_prior_samples(trainer.model, corpus, writer, trainer.step, FLAGS.seed)
    writer.flush()
    if FLAGS.export_dir and chief:
        export_model(trainer.model, corpus, FLAGS.export_dir)
        result["export_dir"] = FLAGS.export_dir
    print("RESULT " + json.dumps(result), flush=True)


def run():
    """Console-script entry point (`tflv-train`)."""
    cli.run(main, __doc__, cli.train_sections)


if __name__ == "__main__":
    run()
