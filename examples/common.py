"""What every example shares: its command line, a plain training loop and evaluation.

Each example is `python examples/NAME.py [--data_dir DIR] [--steps N] [--smoke]`; `--smoke`
shrinks it to seconds (tests/test_examples.py runs every example that way): tiny models, two
steps, and the steps run eagerly, since tracing a `tf.function` costs more than two steps. The loop is the
simplest correct one for a tflv model: Adam on the batch mean of `model.objective(batch).loss`,
as `trainers/loop.py` does on one device without checkpoints; evaluation sums the model's
per-example statistics and hands them to `model.metrics_from_sums`, as the trainer does.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


SMOKE_STEPS = 2
_compile = True  # tf.function the training and evaluation steps (not with --smoke)


def parse_args(description: str, steps: int, argv=None) -> argparse.Namespace:
    """`--data_dir` (default: env TFLV_DATA_DIR, then ../shared/data), `--steps` (default `steps`,
    or `SMOKE_STEPS` with `--smoke`), `--smoke`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data_dir", default=None,
                        help="corpora root (default: $TFLV_DATA_DIR, else ../shared/data)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps per model (default {steps}; {SMOKE_STEPS} with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models and a few steps: checks the example runs, in seconds")
    args = parser.parse_args(argv)
    global _compile
    _compile = not args.smoke
    if args.steps is None:
        args.steps = SMOKE_STEPS if args.smoke else steps
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return args


def fit(model, dataset: tf.data.Dataset, steps: int, learning_rate: float = 2e-3,
        clip_norm: float = 5.0) -> list[float]:
    """`steps` Adam updates of `model` on batches of `dataset` (repeated); the losses."""
    optimizer = keras.optimizers.Adam(learning_rate, global_clipnorm=clip_norm)

    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(batch, training=True).loss)
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return loss

    if _compile:
        step = tf.function(step, reduce_retracing=True)  # sentence batches vary in length
    return [float(step(batch)) for batch in dataset.repeat().take(steps)]


def evaluate(model, dataset: tf.data.Dataset, max_batches: int = 0) -> dict[str, float]:
    """`model.metrics_from_sums` of its statistics summed over `dataset` (or its first batches)."""
    def stats(batch):
        return {name: tf.reduce_sum(value)
                for name, value in model.objective(batch, training=False).stats.items()}

    if _compile:
        stats = tf.function(stats, reduce_retracing=True)
    sums: dict[str, float] = {}
    for batch in dataset.take(max_batches) if max_batches else dataset:
        for name, value in stats(batch).items():
            sums[name] = sums.get(name, 0.0) + float(value)
    return model.metrics_from_sums(sums)
