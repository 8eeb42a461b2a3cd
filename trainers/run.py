"""A run: describing it, building its corpus and `Trainer`, restoring it, evaluating it.

A run description is the dict a model directory records (`tflv_run.json`, persisted by
`trainers.run_record`):

    {"model": "rnnlm", "dataset": "ptb", "dataset_options": {},
     "hparams": {"hidden_dim": 256, …},            # the hyperparameters the model read
     "batch_size": 32, "seed": 0,
     "sequence": {"seq_len": 35},                  # the input form's settings
     "training": {"train_steps": 1000, "learning_rate": 0.002,
                  "learning_rate_schedule": "constant", "clip_norm": 5.0},
     "train_data": {"tokens": …, "examples": …}}   # set by `make_trainer`

Every function here takes its settings as arguments — none reads a flag — so the train, export,
sample and evaluate entry points (and Python code) share it; the command line's description is
`trainers.run_flags.run_description`.

    run = describe_run("rnnlm", "ptb", hparams={"hidden_dim": 64}, batch_size=32, seed=0,
                       seq_len=35, max_length=None, train_steps=100, learning_rate=2e-3,
                       learning_rate_schedule="constant", clip_norm=5.0)
    corpus = load_corpus(run)
    corpus, trainer, train_ds = make_trainer(run, corpus, tf.distribute.get_strategy())
    # … train, then elsewhere:
    run, corpus, trainer = restore_run("runs/rnnlm_ptb")

#### References
No mathematics here.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import tensorflow as tf
from absl import logging

import data
from data.paths import resolve_data_dir
from tflv.models import get_model_class
from trainers.checkpoints import Checkpoints
from trainers.loop import Trainer, learning_rate_schedule, write_metrics
from trainers.run_record import (RUN_FILE, load_run_vocab, vocabulary_differences,
                                 with_run_vocab)

SEQUENCE_FORMS = ("sentences", "tokens", "tagged", "parallel")
# Hyperparameters whose default is not, for some models, the behaviour from before they existed:
# per model, the value a run recorded without them was built with (prodlda trained by NVDM's
# settings before issue 19; neural_template learned its segment lengths before they could be
# uniform, copied through a gate, and counted its templates over the first 1,000 training
# sentences).
BEFORE_IT_EXISTED = {"topic_recipe": {"prodlda": "nvdm"},
                     "template_uniform_lengths": {"neural_template": False},
                     "template_copy": {"neural_template": "gate"},
                     "template_examples": {"neural_template": 1000}}
# lengths up to which `bucket_width` makes buckets (longer sentences share the last one)
BUCKETED_LENGTHS = 256


class RunError(ValueError):
    """A model directory that is no restorable run (no record, no checkpoint)."""


def describe_run(model: str, dataset: str, *, dataset_options: Mapping[str, Any] | None = None,
                 hparams: Mapping[str, Any], batch_size: int, seed: int, seq_len: int,
                 max_length: int | None, train_steps: int, learning_rate: float,
                 learning_rate_schedule: str, clip_norm: float, bucket_width: int = 0) -> dict:
    """The description of a run: model, dataset, the settings that shape the weights and fix the
    data position, and the training settings (which may change on resume). `bucket_width`
    (sentences; 0: none): training batches drawn from buckets of that many lengths
    (`form_options`); recorded only when set, so records written before it still match."""
    return {
        "model": model,
        "dataset": dataset,
        "dataset_options": dict(dataset_options or {}),
        "hparams": dict(hparams),
        "batch_size": batch_size,
        "seed": seed,
        "sequence": {"seq_len": seq_len, "max_length": max_length,
                     **({"bucket_width": bucket_width} if bucket_width else {})},
        "training": {"train_steps": train_steps, "learning_rate": learning_rate,
                     "learning_rate_schedule": learning_rate_schedule, "clip_norm": clip_norm},
    }


def sequence_settings(form: str, sequence: Mapping[str, Any]) -> dict:
    """The sequence settings a form uses: a stream's `seq_len`, sentences' `max_length` (and
    `bucket_width` where set)."""
    if form == "stream":
        return {"seq_len": sequence["seq_len"]}
    if form in SEQUENCE_FORMS:
        return {"max_length": sequence["max_length"],
                **({"bucket_width": sequence["bucket_width"]}
                   if sequence.get("bucket_width") else {})}
    return {}


def form_options(form: str, train: bool, sequence: Mapping[str, Any]) -> dict:
    """Options of `Corpus.dataset` for a form: window length, or for training sentences the
    length cut-off and the length buckets: with `bucket_width` W, examples whose length (the
    longest of their sequences) falls in the same [iW, (i+1)W) are batched together (the
    longest share the last bucket), so a batch pads less; each still comes once per epoch."""
    if form == "stream":
        return {"seq_len": sequence["seq_len"]}
    options = {}
    if form in SEQUENCE_FORMS and train:
        if sequence.get("max_length"):
            options["max_length"] = sequence["max_length"]
        if sequence.get("bucket_width"):
            width = sequence["bucket_width"]
            longest = max(sequence.get("max_length") or 0, BUCKETED_LENGTHS)
            options["bucket_boundaries"] = list(range(width, longest + 1, width))
    return options


def with_new_hparams(run: dict, defaults: Mapping[str, Any]) -> dict:
    """`run` with each hyperparameter of `defaults` (name → default) it does not record, at its
    default.

    A run description written before a hyperparameter existed lacks it; a new hyperparameter's
    default keeps the behaviour from before, so the run was built with that default, except
    where the default itself changed the behaviour (`BEFORE_IT_EXISTED`: the value that does not).
    """
    added = {name: BEFORE_IT_EXISTED.get(name, {}).get(run.get("model"), default)
             for name, default in defaults.items() if name not in run["hparams"]}
    return {**run, "hparams": {**added, **run["hparams"]}}


def load_corpus(run: Mapping[str, Any], data_dir: str | None = None):
    """The corpus `run` trains on, from `data_dir` (default: `data.paths.resolve_data_dir`)."""
    return data.load(run["dataset"], data_dir=resolve_data_dir(data_dir),
                     **run["dataset_options"])


def make_trainer(run: dict, corpus, strategy: tf.distribute.Strategy, *,
                 hparam_defaults: Mapping[str, Any] | None = None,
                 vocabularies: dict | None = None,
                 text_batcher: Callable | None = None, recipe_clip_norm: bool = False):
    """The corpus and a `Trainer` whose model is built over `corpus` as `run` describes, and the
    training dataset.

    `run["hparams"]` (the fields of the model's `Config`) is narrowed to those the model read
    (`tflv.models.config.Reads`), which is what a model
    directory records; a recorded run may lack those added since (`hparam_defaults`, see
    `with_new_hparams`). `run["sequence"]` is narrowed to the settings of the model's input
    form, and `run["train_data"]` set to the size of the training split. With `vocabularies`
    (those saved with a run) that differ from the data's, the model is built over them and the
    returned corpus carries them (`with_run_vocab`), for export and sampling; its datasets are
    then not the run's and the training dataset returned is None. Building such a model takes a
    batch of text: `text_batcher(corpus, form)` (`trainers.export.TextBatcher`) makes it.
    `recipe_clip_norm`: a model's training recipe's gradient clipping (ProdLDA's) replaces
    `run["training"]["clip_norm"]` (the command line's default: no `--clip_norm` given);
    `run["training"]["clip_norm"]` is then set to the clipping used.

    Raises:
      RunError: the vocabularies differ and no `text_batcher` was given.
      tflv.models.ConfigError: a hyperparameter value the model's `Config` refuses.
    """
    model_cls = get_model_class(run["model"])
    values = with_new_hparams(run, hparam_defaults or {})["hparams"]
    config, read = model_cls.Config.pick(values), set()  # tflv.models.ConfigError: a bad value
    changed = bool(vocabularies) and bool(vocabulary_differences(vocabularies, corpus))
    if changed:
        if text_batcher is None:
            raise RunError("the data's vocabularies differ from those saved with the run: "
                           "building the model over the saved ones needs a text_batcher")
        logging.warning("the data's vocabularies differ from those saved with the run; "
                        "building the model over the saved ones")
        corpus = with_run_vocab(corpus, vocabularies)
    training = run["training"]
    trainer = Trainer(lambda: model_cls.from_corpus(corpus, config, read=read), strategy,
                      global_batch_size=run["batch_size"],
                      learning_rate=learning_rate_schedule(
                          training["learning_rate"], training["learning_rate_schedule"],
                          training["train_steps"]),
                      clip_norm=training["clip_norm"], recipe_clip_norm=recipe_clip_norm)
    run["training"] = {**training, "clip_norm": trainer.clip_norm}
    run["hparams"] = {name: values[name] for name in sorted(read)}
    form = model_cls.input_form
    run["sequence"] = sequence_settings(form, run["sequence"])
    run["train_data"] = {"tokens": corpus.num_tokens("train"),
                         "examples": corpus.num_examples("train")}
    if changed:  # a batch of the saved vocabularies fixes the shapes
        batcher = text_batcher(corpus, form)
        trainer.build(batcher(*[tf.constant(["<unk>"])] * batcher.num_texts))
        return corpus, trainer, None
    train_ds = corpus.dataset("train", form, run["batch_size"], shuffle=True, seed=run["seed"],
                              repeat=True, **form_options(form, True, run["sequence"]))
    trainer.build(next(iter(train_ds)))
    return corpus, trainer, train_ds


def recorded_run(model_dir: str) -> dict | None:
    """The run description recorded in `model_dir` (`tflv_run.json`), or None."""
    path = os.path.join(model_dir, RUN_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def kl_warmup_steps(model_dir: str, given: int | None, default: int) -> int:
    """The KL warm-up of a run: `given`; if None, what the run in `model_dir` recorded (a resumed
    run keeps its schedule whatever its new `train_steps`), else `default`."""
    if given is not None:
        return given
    held = (recorded_run(model_dir) or {}).get("hparams", {}).get("kl_warmup_steps")
    return held or default


def restore_run(model_dir: str, *, data_dir: str | None = None,
                defaults: Mapping[str, Any] | None = None,
                text_batcher: Callable | None = None):
    """The run description (`tflv_run.json`) of the trained run in `model_dir`, its corpus and a
    `Trainer` built as it says and restored from its newest readable checkpoint.

    The model is built over the vocabularies saved with the run, whatever the data root
    (`data_dir`) holds now; the returned corpus carries them (`trainers.run_record`; building
    over changed vocabularies needs `text_batcher`, see `make_trainer`). `defaults`: a run
    description (`describe_run`) giving the entries an older record lacks; its `hparams` are
    the defaults of hyperparameters added since the record was written.

    Raises:
      RunError: `model_dir` holds no run record or no readable checkpoint.
    """
    record = recorded_run(model_dir) if model_dir else None
    if record is None:
        raise RunError(f"--model_dir={model_dir} is not a trained run (no "
                       f"{os.path.join(model_dir or '', RUN_FILE)})")
    defaults = dict(defaults or {})
    missing = [name for name in ("dataset_options", "batch_size", "seed", "sequence", "training")
               if name not in record and name not in defaults]
    if missing:
        raise RunError(f"{os.path.join(model_dir, RUN_FILE)} lacks {', '.join(missing)} (written "
                       "by an older tflv): pass defaults")
    run = {**defaults, **record}
    run["sequence"] = {**defaults.get("sequence", {}), **run["sequence"]}
    corpus, trainer, _ = make_trainer(run, load_corpus(run, data_dir),
                                      tf.distribute.get_strategy(),
                                      hparam_defaults=defaults.get("hparams"),
                                      vocabularies=load_run_vocab(model_dir),
                                      text_batcher=text_batcher)
    reader = Checkpoints(trainer.checkpoint, model_dir, chief=False)  # writes nothing
    if reader.restore_latest(model_dir) is None:
        raise RunError(f"no checkpoint in --model_dir={model_dir}")
    return run, corpus, trainer


def evaluate_splits(trainer: Trainer, corpus, writer, sequence: Mapping[str, Any],
                    splits=("valid", "test"), batch_size: int = 64,
                    max_batches: int = 0) -> dict:
    """Metrics on `valid` (prefixed `valid_`) and `test`, those of `splits` the corpus has
    (a corpus without a `valid` split, e.g. news20, skips it), in batches of `batch_size`, at
    most `max_batches` of them (0: all); `sequence`: the run's sequence settings.

    Raises:
      ValueError: `corpus` carries a run's saved vocabularies that its data no longer matches.
    """
    if getattr(corpus, "vocabulary_differences", None):
        raise ValueError("cannot evaluate on the data root's corpus: its vocabularies differ from "
                         "the run's (" + "; ".join(corpus.vocabulary_differences) + ")")
    form = type(trainer.model).input_form
    result = {}
    for split, prefix in (("valid", "valid_"), ("test", "")):
        if split not in splits or split not in corpus.splits:
            continue
        metrics = {}
        if corpus.offers(split, form):  # e2e's test split: record sets only, no likelihood
            dataset = corpus.dataset(split, form, batch_size,
                                     **form_options(form, False, sequence))
            metrics = trainer.evaluate(dataset, max_batches)
        with writer.as_default(step=trainer.step):  # what it draws (topics, tag confusion)
            metrics.update(trainer.model.evaluate_corpus(corpus, split, batch_size))
        write_metrics(writer, trainer.step, metrics, split)
        result.update({prefix + name: value for name, value in metrics.items()})
    return result
