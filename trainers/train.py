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
import os
import time

import keras
import tensorflow as tf
from absl import app, logging

import data
from data.paths import resolve_data_dir
from tflv.models import HParams, get_model_class, serving
from trainers import corpus_flags
from trainers import flags as tflv_flags
from trainers.checkpoints import RUN_FILE, Checkpoints, claim_model_dir
from trainers.loop import Progress, Trainer, learning_rate_schedule, write_metrics
from trainers.strategy import is_chief, make_strategy, split_cpu, task_id

FLAGS = tflv_flags.FLAGS
SEQUENCE_FORMS = ("sentences", "tokens", "tagged", "parallel")


def dataset_options(dataset: str) -> dict:
    return corpus_flags.dataset_options(dataset)


def form_options(form: str, train: bool) -> dict:
    """Options of `Corpus.dataset` for a form: window length, or the training length cut-off."""
    if form == "stream":
        return {"seq_len": FLAGS.seq_len}
    if form in SEQUENCE_FORMS and train and FLAGS.max_length:
        return {"max_length": FLAGS.max_length}
    return {}


def run_description() -> dict:
    """What a model directory holds: model, dataset and the settings that shape the weights."""
    return {
        "model": FLAGS.model,
        "dataset": corpus_flags.canonical_dataset(FLAGS.dataset),
        "dataset_options": dataset_options(FLAGS.dataset),
        "hparams": {name: FLAGS[name].value for name in tflv_flags.MODEL_FLAGS},
    }


def with_new_hparams(run: dict, names) -> dict:
    """`run` with each model hyperparameter of `names` it does not record at its flag default.

    A run description written before a hyperparameter existed lacks it; a new hyperparameter's
    default keeps the behaviour from before, so the run was built with that default.
    """
    added = {name: FLAGS[name].default for name in names if name not in run["hparams"]}
    return {**run, "hparams": {**added, **run["hparams"]}}


def make_trainer(run: dict, strategy: tf.distribute.Strategy):
    """The corpus and a `Trainer` whose model is built as `run` describes.

    `run["hparams"]` is narrowed to the hyperparameters the model read, which is what a model
    directory records; a recorded run may lack those added since (`with_new_hparams`).
    """
    model_cls = get_model_class(run["model"])
    corpus = data.load(run["dataset"], data_dir=resolve_data_dir(FLAGS.data_dir),
                       **run["dataset_options"])
    corpus_flags.check_model_fits(run["model"], model_cls, run["dataset"], corpus)
    hparams = HParams(with_new_hparams(run, tflv_flags.MODEL_FLAGS)["hparams"])
    trainer = Trainer(lambda: model_cls.from_corpus(corpus, hparams), strategy,
                      global_batch_size=FLAGS.batch_size,
                      learning_rate=learning_rate_schedule(
                          FLAGS.learning_rate, FLAGS.learning_rate_schedule, FLAGS.train_steps),
                      clip_norm=FLAGS.clip_norm)
    unused = [name for name in hparams if FLAGS[name].present and name not in hparams.read]
    if unused:
        raise app.UsageError(f"--model={run['model']} does not use "
                             + ", ".join(f"--{name}" for name in unused))
    run["hparams"] = {name: hparams[name] for name in sorted(hparams.read)}
    train_ds = corpus.dataset("train", model_cls.input_form, FLAGS.batch_size, shuffle=True,
                              seed=FLAGS.seed, repeat=True,
                              **form_options(model_cls.input_form, train=True))
    trainer.build(next(iter(train_ds)))
    return corpus, trainer, train_ds


def restore_run(model_dir: str):
    """The run description (`tflv_run.json`) of the trained run in `model_dir`, its corpus and a
    `Trainer` built as it says and restored from its newest readable checkpoint."""
    run_file = os.path.join(model_dir or "", RUN_FILE)
    if not model_dir or not os.path.exists(run_file):
        raise app.UsageError(f"--model_dir must be a trained run (no {run_file})")
    with open(run_file) as f:
        run = json.load(f)
    corpus, trainer, _ = make_trainer(run, tf.distribute.get_strategy())
    if Checkpoints(trainer.checkpoint, model_dir).restore_latest(model_dir) is None:
        raise app.UsageError(f"no checkpoint in --model_dir={model_dir}")
    return run, corpus, trainer


def evaluate_splits(trainer: Trainer, corpus, writer, splits=("valid", "test")) -> dict:
    """Metrics on `valid` (prefixed `valid_`) and `test`, those of `splits` the corpus has."""
    form = type(trainer.model).input_form
    result = {}
    for split, prefix in (("valid", "valid_"), ("test", "")):
        if split not in splits or split not in corpus.splits:
            continue
        dataset = corpus.dataset(split, form, FLAGS.eval_batch_size, **form_options(form, False))
        metrics = trainer.evaluate(dataset, FLAGS.max_eval_batches)
        with writer.as_default(step=trainer.step):  # what it draws (topics, tag confusion)
            metrics.update(trainer.model.evaluate_corpus(corpus, split, FLAGS.eval_batch_size))
        write_metrics(writer, trainer.step, metrics, split)
        result.update({prefix + name: value for name, value in metrics.items()})
    return result


def write_prior_samples(model, corpus, writer, step: int, count: int = 8, length: int = 30):
    """Prints and writes (text summary `samples/prior`) `count` sentences x ~ p(x | z),
    z ~ p(z) of a model that has `sample_prior` (`sentence_vae`, `mixture_lm`)."""
    if not hasattr(model, "sample_prior"):
        return
    from trainers.export import TextBatcher
    sample = serving.sample_signature(TextBatcher(corpus, "sentences"), model.sample_prior)
    texts = sample(tf.constant(count), tf.constant(length), tf.constant(1.0),
                   tf.constant([FLAGS.seed, step], tf.int32))["text"]
    for text in texts.numpy():
        print(f"sample  {text.decode()}", flush=True)
    with writer.as_default(step=step):
        tf.summary.text("samples/prior", texts)


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:  # TensorFlow's INFO chatter would bury the progress lines
        logging.set_verbosity(logging.WARNING)
    split_cpu(FLAGS.num_cpu_devices)
    strategy = make_strategy(FLAGS.strategy)  # before any op: multi-worker needs it first
    keras.utils.set_random_seed(FLAGS.seed)
    chief = is_chief(strategy)
    model_dir = FLAGS.model_dir or os.path.join(
        "runs", f"{FLAGS.model}_{corpus_flags.run_name(FLAGS.dataset)}")
    run = run_description()
    corpus, trainer, train_ds = make_trainer(run, strategy)
    if chief:
        claim_model_dir(model_dir, run, upgrade=lambda held: with_new_hparams(held, run["hparams"]))
    checkpoints = Checkpoints(trainer.checkpoint, model_dir, chief, task_id(strategy))
    restored = checkpoints.restore_latest(model_dir)
    if restored:
        print(f"resumed from {restored} at step {trainer.step}", flush=True)
    writer = (tf.summary.create_file_writer(os.path.join(model_dir, "summaries"))
              if chief else tf.summary.create_noop_writer())
    start = time.perf_counter()
    trainer.train(train_ds, FLAGS.train_steps, checkpoints,
                  Progress(FLAGS.train_steps, trainer.step, writer, FLAGS.log_every,
                           print_fn=lambda line: print(line, flush=True)),
                  FLAGS.checkpoint_every, eval_every=FLAGS.eval_every,
                  on_eval=lambda step: evaluate_splits(trainer, corpus, writer, ("valid",)))
    result = {"model": FLAGS.model, "dataset": FLAGS.dataset, "step": trainer.step,
              "train_seconds": round(time.perf_counter() - start, 1),
              **evaluate_splits(trainer, corpus, writer)}
    write_prior_samples(trainer.model, corpus, writer, trainer.step)
    writer.flush()
    if FLAGS.export_dir and chief:
        from trainers.export import export_model
        export_model(trainer.model, corpus, FLAGS.export_dir)
        result["export_dir"] = FLAGS.export_dir
    print("RESULT " + json.dumps(result), flush=True)


def run():
    """Console-script entry point (`tflv-train`)."""
    app.run(main)


if __name__ == "__main__":
    run()
