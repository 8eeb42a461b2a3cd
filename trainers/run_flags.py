"""The run the command line describes: `trainers.run`'s arguments read from the flags.

The entry points (`tflv-train`, `tflv-export`, `tflv-eval`, `trainers.sample`) share these; every
function of `trainers.run` takes its settings as arguments, and this module is the one place that
reads them from `trainers.flags.FLAGS`.

#### References
No mathematics here.
"""
from __future__ import annotations

from absl import app

from tflv.models import ConfigError
from trainers import corpus_flags, run
from trainers import flags as tflv_flags

FLAGS = tflv_flags.FLAGS


def run_description() -> dict:
    """`run.describe_run` of the flags: what a model directory records (`trainers.run_record`)."""
    return run.describe_run(
        FLAGS.model, corpus_flags.canonical_dataset(FLAGS.dataset),
        dataset_options=corpus_flags.dataset_options(FLAGS.dataset),
        hparams={name: FLAGS[name].value for name in tflv_flags.MODEL_FLAGS},
        batch_size=FLAGS.batch_size, seed=FLAGS.seed, seq_len=FLAGS.seq_len,
        max_length=FLAGS.max_length, train_steps=FLAGS.train_steps,
        learning_rate=FLAGS.learning_rate, learning_rate_schedule=FLAGS.learning_rate_schedule,
        clip_norm=FLAGS.clip_norm, bucket_width=FLAGS.bucket_width)


def hparam_defaults() -> dict:
    """The model hyperparameters' flag defaults (those a run recorded before they existed was
    built with, `run.with_new_hparams`)."""
    return {name: FLAGS[name].default for name in tflv_flags.MODEL_FLAGS}


def restore_run(model_dir: str, text_batcher=None):
    """`run.restore_run` of `model_dir` (`--model_dir`) over `--data_dir`; entries an older record lacks come
    from the flags (`run_description`), hyperparameters added since from their defaults.

    Raises:
      app.UsageError: `model_dir` is no trained run (`run.RunError`).
    """
    try:
        return run.restore_run(model_dir, data_dir=FLAGS.data_dir,
                               defaults={**run_description(), "hparams": hparam_defaults()},
                               text_batcher=text_batcher)
    except run.RunError as err:
        raise app.UsageError(str(err)) from None
    except ConfigError as err:
        raise app.UsageError(tflv_flags.as_flags(err)) from None
