"""Evaluates a finished run's newest readable checkpoint on its corpus's validation and test splits.

    python -m trainers.evaluate --model_dir=runs/rnnlm_ptb [--eval_splits=valid,test]
        [--data_dir=DIR] [--eval_batch_size=N] [--max_eval_batches=N]

(also installed as `tflv-eval`). The model is rebuilt from the run description in `--model_dir`
(`tflv_run.json`) and restored from its newest readable checkpoint, as `tflv-export` does; the
metrics are those `tflv-train` prints at the end of training (`trainers.run.evaluate_splits`),
and the command ends with one line `RESULT {json}`: model, dataset, step and the test metrics
(validation metrics prefixed `valid_`). It writes nothing to `--model_dir`.
"""
from __future__ import annotations

import json

import tensorflow as tf
import keras
from absl import app, flags, logging

from trainers import cli
from trainers import flags as tflv_flags
from trainers.collapse import collapse_warning
from trainers.run import evaluate_splits
from trainers.run_flags import restore_run

FLAGS = tflv_flags.FLAGS
SPLITS = ("valid", "test")
flags.DEFINE_list("eval_splits", list(SPLITS), "tflv-eval: the splits to evaluate, of "
                  f"{', '.join(SPLITS)} (those the corpus has).")

HELP_SECTIONS = [("Flags of tflv-eval", (
    ("model_dir", "A trained run: its tflv_run.json and checkpoints (required)."), "eval_splits",
    "data_dir", "eval_batch_size", "max_eval_batches", "seq_len", "seed"))]


def evaluate_run(model_dir: str, splits=SPLITS) -> dict:
    """`{model, dataset, step, metrics…}` of the newest readable checkpoint in `model_dir`."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise app.UsageError(f"--eval_splits must name some of {', '.join(SPLITS)}, got "
                             f"{','.join(splits) or 'none'}")
    run, corpus, trainer = restore_run(model_dir)
    sequence = {**run["sequence"], **({"seq_len": FLAGS.seq_len} if FLAGS["seq_len"].present
                                      else {})}  # the run's windows unless --seq_len is given
    metrics = evaluate_splits(trainer, corpus, tf.summary.create_noop_writer(), sequence,
                              tuple(splits), FLAGS.eval_batch_size, FLAGS.max_eval_batches)
    return {"model": run["model"], "dataset": run["dataset"], "step": trainer.step, **metrics}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    keras.utils.set_random_seed(FLAGS.seed)  # sampled bounds (importance sampling) repeat
    print(cli.device_line(tf.distribute.get_strategy()), flush=True)
    result = evaluate_run(FLAGS.model_dir, FLAGS.eval_splits)
    warning = collapse_warning(result["model"], result)
    if warning:
        logging.warning(warning)
    print("RESULT " + json.dumps(result), flush=True)


def run():
    """Console-script entry point (`tflv-eval`)."""
    cli.run(main, __doc__, HELP_SECTIONS)


if __name__ == "__main__":
    run()
