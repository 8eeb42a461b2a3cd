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
import sys
import time

import keras
import tensorflow as tf
from absl import app, logging

import data
from data.paths import resolve_data_dir
from tflv.models import HParams, get_model_class, serving
from trainers import cli, corpus_flags
from trainers import flags as tflv_flags
from trainers.checkpoints import (Checkpoints, ModelDirBusyError, ModelDirLock,
                                  remove_stale_temp_folders)
from trainers.collapse import collapse_warning
from trainers.loop import Progress, Trainer, learning_rate_schedule, write_metrics
from trainers.run_record import (RUN_FILE, claim_model_dir, load_run_vocab,
                                 vocabulary_differences, with_run_vocab)
from trainers.strategy import is_chief, is_worker_failure, make_strategy, split_cpu, task_id

FLAGS = tflv_flags.FLAGS
SEQUENCE_FORMS = ("sentences", "tokens", "tagged", "parallel")


def dataset_options(dataset: str) -> dict:
    return corpus_flags.dataset_options(dataset)


def sequence_settings(form: str, sequence: dict) -> dict:
    """The sequence settings a form uses: a stream's `seq_len`, sentences' `max_length`."""
    if form == "stream":
        return {"seq_len": sequence["seq_len"]}
    if form in SEQUENCE_FORMS:
        return {"max_length": sequence["max_length"]}
    return {}


def form_options(form: str, train: bool, sequence: dict) -> dict:
    """Options of `Corpus.dataset` for a form: window length, or the training length cut-off."""
    if form == "stream":
        return {"seq_len": sequence["seq_len"]}
    if form in SEQUENCE_FORMS and train and sequence.get("max_length"):
        return {"max_length": sequence["max_length"]}
    return {}


def run_description() -> dict:
    """What a model directory records (`trainers.run_record`): model, dataset, the settings that
    shape the weights and fix the data position, and the training settings (which may change)."""
    return {
        "model": FLAGS.model,
        "dataset": corpus_flags.canonical_dataset(FLAGS.dataset),
        "dataset_options": dataset_options(FLAGS.dataset),
        "hparams": {name: FLAGS[name].value for name in tflv_flags.MODEL_FLAGS},
        "batch_size": FLAGS.batch_size,
        "seed": FLAGS.seed,
        "sequence": {"seq_len": FLAGS.seq_len, "max_length": FLAGS.max_length},
        "training": {"train_steps": FLAGS.train_steps, "learning_rate": FLAGS.learning_rate,
                     "learning_rate_schedule": FLAGS.learning_rate_schedule,
                     "clip_norm": FLAGS.clip_norm},
    }


# Hyperparameters whose flag default is not, for some models, the behaviour from before they
# existed: per model, the value a run recorded without them was built with (prodlda trained by NVDM's settings before issue 19).
BEFORE_IT_EXISTED = {"topic_recipe": {"prodlda": "nvdm"}}


def with_new_hparams(run: dict, names) -> dict:
    """`run` with each model hyperparameter of `names` it does not record at its flag default.

    A run description written before a hyperparameter existed lacks it; a new hyperparameter's
    default keeps the behaviour from before, so the run was built with that default, except
    where the default itself changed the behaviour (`BEFORE_IT_EXISTED`: the value that does not).
    """
    added = {name: BEFORE_IT_EXISTED.get(name, {}).get(run.get("model"), FLAGS[name].default)
             for name in names if name not in run["hparams"]}
    return {**run, "hparams": {**added, **run["hparams"]}}


def make_trainer(run: dict, strategy: tf.distribute.Strategy, vocabularies: dict | None = None,
                 mixed_precision: str = "float32", jit_compile: str = "auto"):
    """The corpus and a `Trainer` whose model is built as `run` describes.

    `run["hparams"]` is narrowed to the hyperparameters the model read, which is what a model
    directory records; a recorded run may lack those added since (`with_new_hparams`).
    `run["sequence"]` is narrowed to the settings of the model's input form, and
    `run["train_data"]` set to the size of the training split. With `vocabularies` (those saved
    with a run) that differ from the data's, the model is built over them and the returned
    corpus carries them (`with_run_vocab`), for export and sampling; its datasets are then not
    the run's and the training dataset returned is None. `mixed_precision`, `jit_compile`: the
    `Trainer`'s (a restored run is evaluated, exported and sampled in float32).
    """
    model_cls = get_model_class(run["model"])
    corpus = data.load(run["dataset"], data_dir=resolve_data_dir(FLAGS.data_dir),
                       **run["dataset_options"])
    corpus_flags.check_model_fits(run["model"], model_cls, run["dataset"], corpus)
    hparams = HParams(with_new_hparams(run, tflv_flags.MODEL_FLAGS)["hparams"])
    changed = bool(vocabularies) and bool(vocabulary_differences(vocabularies, corpus))
    if changed:
        logging.warning("the data's vocabularies differ from those saved with the run; "
                        "building the model over the saved ones")
        corpus = with_run_vocab(corpus, vocabularies)
    trainer = Trainer(lambda: model_cls.from_corpus(corpus, hparams), strategy,
                      global_batch_size=run["batch_size"],
                      learning_rate=learning_rate_schedule(
                          FLAGS.learning_rate, FLAGS.learning_rate_schedule, FLAGS.train_steps),
                      clip_norm=FLAGS.clip_norm, mixed_precision=mixed_precision,
                      jit_compile=jit_compile)
    unused = [name for name in hparams if FLAGS[name].present and name not in hparams.read]
    if unused:
        raise app.UsageError(f"--model={run['model']} does not use "
                             + ", ".join(f"--{name}" for name in unused))
    run["hparams"] = {name: hparams[name] for name in sorted(hparams.read)}
    form = model_cls.input_form
    run["sequence"] = sequence_settings(form, {**run_description()["sequence"], **run["sequence"]})
    run["train_data"] = {"tokens": corpus.num_tokens("train"),
                         "examples": corpus.num_examples("train")}
    if changed:  # a batch of the saved vocabularies fixes the shapes
        from trainers.export import TextBatcher
        batcher = TextBatcher(corpus, form)
        trainer.build(batcher(*[tf.constant(["<unk>"])] * batcher.num_texts))
        return corpus, trainer, None
    train_ds = corpus.dataset("train", form, run["batch_size"], shuffle=True, seed=run["seed"],
                              repeat=True, **form_options(form, True, run["sequence"]))
    trainer.build(next(iter(train_ds)))
    return corpus, trainer, train_ds


def float32_copy(run: dict, strategy: tf.distribute.Strategy, trained: Trainer) -> Trainer:
    """A float32 `Trainer` of `run` holding `trained`'s weights and step (the variables of a
    mixed-precision model are float32 already: they are copied as they are)."""
    _, trainer, _ = make_trainer(run, strategy)
    for target, source in zip(trainer.model.variables, trained.model.variables):
        target.assign(source)
    trainer.optimizer.iterations.assign(trained.optimizer.iterations)
    return trainer


def kl_warmup_steps(model_dir: str, given: int | None, train_steps: int) -> int:
    """`--kl_warmup_steps`: as `given`; if absent, what the run in `model_dir` recorded (a resumed
    run keeps its schedule whatever its new `--train_steps`), else
    `flags.default_kl_warmup_steps(train_steps)`."""
    if given is not None:
        return given
    run_file = os.path.join(model_dir, RUN_FILE)
    if tf.io.gfile.exists(run_file):
        with tf.io.gfile.GFile(run_file) as f:
            held = json.load(f).get("hparams", {}).get("kl_warmup_steps")
        if held:
            return held
    return tflv_flags.default_kl_warmup_steps(train_steps)


def restore_run(model_dir: str):
    """The run description (`tflv_run.json`) of the trained run in `model_dir`, its corpus and a
    `Trainer` built as it says and restored from its newest readable checkpoint.

    The model is built over the vocabularies saved with the run, whatever the data root holds
    now; the returned corpus carries them (`trainers.run_record`)."""
    run_file = os.path.join(model_dir or "", RUN_FILE)
    if not model_dir or not os.path.exists(run_file):
        raise app.UsageError(f"--model_dir must be a trained run (no {run_file})")
    with open(run_file) as f:
        run = {**run_description(), **json.load(f)}  # entries an older record lacks: flags
    corpus, trainer, _ = make_trainer(run, tf.distribute.get_strategy(), load_run_vocab(model_dir))
    reader = Checkpoints(trainer.checkpoint, model_dir, chief=False)  # writes nothing
    if reader.restore_latest(model_dir) is None:
        raise app.UsageError(f"no checkpoint in --model_dir={model_dir}")
    return run, corpus, trainer


def evaluate_splits(trainer: Trainer, corpus, writer, splits=("valid", "test"),
                    sequence: dict | None = None) -> dict:
    """Metrics on `valid` (prefixed `valid_`) and `test`, those of `splits` the corpus has
    (a corpus without a `valid` split, e.g. news20, skips it); `sequence`: the run's sequence
    settings (default: the flags').

    Raises:
      ValueError: `corpus` carries a run's saved vocabularies that its data no longer matches.
    """
    if getattr(corpus, "vocabulary_differences", None):
        raise ValueError("cannot evaluate on the data root's corpus: its vocabularies differ from "
                         "the run's (" + "; ".join(corpus.vocabulary_differences) + ")")
    sequence = sequence if sequence is not None else run_description()["sequence"]
    form = type(trainer.model).input_form
    result = {}
    for split, prefix in (("valid", "valid_"), ("test", "")):
        if split not in splits or split not in corpus.splits:
            continue
        dataset = corpus.dataset(split, form, FLAGS.eval_batch_size,
                                 **form_options(form, False, sequence))
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
    FLAGS.kl_warmup_steps = kl_warmup_steps(model_dir, FLAGS.kl_warmup_steps, FLAGS.train_steps)
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
    corpus, trainer, train_ds = make_trainer(run, strategy, mixed_precision=FLAGS.mixed_precision,
                                             jit_compile=FLAGS.jit_compile)
    if chief:
        claim_model_dir(model_dir, run, corpus,
                        upgrade=lambda held: with_new_hparams(held, run["hparams"]))
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
                  on_eval=lambda step: evaluate_splits(trainer, corpus, writer, ("valid",),
                                                       run["sequence"]))
    if trainer.policy != "float32":  # evaluated and exported in float32, with the trained weights
        trainer = float32_copy(run, strategy, trainer)
    result = {"model": FLAGS.model, "dataset": FLAGS.dataset, "step": trainer.step,
              "train_seconds": round(time.perf_counter() - start, 1),
              **evaluate_splits(trainer, corpus, writer, sequence=run["sequence"])}
    warning = collapse_warning(FLAGS.model, result)
    if warning:
        logging.warning(warning)
    write_prior_samples(trainer.model, corpus, writer, trainer.step)
    writer.flush()
    if FLAGS.export_dir and chief:
        from trainers.export import export_model
        export_model(trainer.model, corpus, FLAGS.export_dir)
        result["export_dir"] = FLAGS.export_dir
    print("RESULT " + json.dumps(result), flush=True)


def run():
    """Console-script entry point (`tflv-train`)."""
    cli.run(main, __doc__, cli.train_sections)


if __name__ == "__main__":
    run()
