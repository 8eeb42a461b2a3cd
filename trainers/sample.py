"""Generates text from a trained latent-variable model: prior samples and homotopies.

    python -m trainers.sample --model_dir=runs/sentence_vae_ptb --mode=prior
        [--num_samples=10] [--sample_length=30] [--temperature=1.0] [--seed=0]
    python -m trainers.sample --model_dir=runs/sentence_vae_ptb --mode=homotopy
        --sentence_a="the company said" --sentence_b="prices fell sharply" [--num_points=5]

`prior` draws z ~ p(z) and then x ~ p(x | z) (models with `sample_prior`: `sentence_vae`,
`mixture_lm`); `homotopy` decodes the codes on the line between the posterior means of two
sentences (Bowman et al. 2016, section 5; models with `homotopy`: `sentence_vae`).
`--temperature=0` decodes greedily (the argmax at each step), as in Bowman et al.'s homotopies.
The model is rebuilt from the run description in `--model_dir` (`trainers.run.restore_run`)
and its newest readable checkpoint restored. Prints one generated sentence per line.

#### References
- Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016). Generating Sentences from a
  Continuous Space.
"""
from __future__ import annotations

import tensorflow as tf
from absl import app, flags

from trainers import cli
from trainers import flags as tflv_flags
from trainers.export import TextBatcher
from trainers.run_flags import restore_run

FLAGS = tflv_flags.FLAGS
flags.DEFINE_enum("mode", "prior", ["prior", "homotopy"], "What to generate.")
flags.DEFINE_integer("num_samples", 10, "prior: number of sentences.")
flags.DEFINE_integer("sample_length", 30, "Tokens generated per sentence (cut at <eos>).")
flags.DEFINE_float("temperature", 1.0, "Softmax temperature of the decoder (0: greedy).")
flags.DEFINE_string("sentence_a", None, "homotopy: the first sentence (whitespace-tokenized).")
flags.DEFINE_string("sentence_b", None, "homotopy: the second sentence.")
flags.DEFINE_integer("num_points", 5, "homotopy: codes on the line, endpoints included (>= 2).")
HELP_SECTIONS = [("Flags of trainers.sample", (
    ("model_dir", "A trained run: its tflv_run.json and checkpoints (required)."), "mode",
    "num_samples", "sample_length", "temperature", "sentence_a", "sentence_b", "num_points", "seed",
    "data_dir"))]


def generate(model, batcher: TextBatcher, mode: str, seed: int) -> list[str]:
    """The sentences `mode` asks of `model` (the flags give sizes and sentences)."""
    seed = tf.constant([seed, 0], tf.int32)
    if mode == "prior":
        if not model.can_sample_prior:
            raise app.UsageError(f"{type(model).__name__} cannot sample from a prior")
        if FLAGS.num_samples < 1:
            raise app.UsageError("--num_samples must be >= 1")
        ids = model.sample_prior(tf.fill([FLAGS.num_samples], batcher.start),
                                 FLAGS.sample_length, FLAGS.temperature, seed)
    else:
        if not model.can_interpolate:
            raise app.UsageError(f"{type(model).__name__} has no continuous code to interpolate")
        if not FLAGS.sentence_a or not FLAGS.sentence_b or FLAGS.num_points < 2:
            raise app.UsageError("--mode=homotopy needs --sentence_a, --sentence_b and "
                                 "--num_points >= 2")
        batch = batcher(tf.constant([FLAGS.sentence_a, FLAGS.sentence_b]))
        ids = model.homotopy(batch, FLAGS.num_points, FLAGS.sample_length, FLAGS.temperature,
                             seed)
    return [text.decode() for text in batcher.to_text(ids).numpy()]


def main(argv):
    del argv
    if FLAGS.temperature < 0:
        raise app.UsageError(f"--temperature must be >= 0 (0: greedy), got {FLAGS.temperature}")
    if FLAGS.sample_length < 1:
        raise app.UsageError(f"--sample_length must be >= 1, got {FLAGS.sample_length}")
    _, corpus, trainer = restore_run(FLAGS.model_dir, TextBatcher)
    batcher = TextBatcher(corpus, "sentences")
    for text in generate(trainer.model, batcher, FLAGS.mode, FLAGS.seed):
        print(text, flush=True)


def run():
    """Entry point of `python -m trainers.sample`."""
    cli.run(main, __doc__, HELP_SECTIONS)


if __name__ == "__main__":
    run()
