"""SavedModel export: signatures that serve raw text, tokenisation and vocabulary in the graph.

    python -m trainers.export --model_dir=runs/rnnlm_ptb --export_dir=exported/rnnlm_ptb
    (or `tflv-train ... --export_dir=DIR` at the end of training; installed as `tflv-export`)

Every exported model has `score(text: string [N]) -> {log_prob [N], tokens [N]}`, the
log-probability (or its bound, for latent-variable models) of each whitespace-tokenised string;
a model may add its own signatures through `serving_signatures(text_to_batch, id_to_token)`.
The SavedModel loads with `tf.saved_model.load` alone: tflv need not be importable where it is
served.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import app

from trainers import flags as tflv_flags
from trainers.checkpoints import RUN_FILE

FLAGS = tflv_flags.FLAGS


class TextBatcher(tf.Module):
    """Turns raw strings into a model batch in-graph (forms `stream` and `sentences`).

    `<bos>` starts each sentence for `sentences` models; stream models never saw `<bos>`, so the
    previous sentence's `<eos>` starts it there, as in the continuous training stream.
    """

    def __init__(self, vocab, form: str):
        super().__init__()
        self.table = vocab.lookup_table()
        tokens = tf.constant(list(vocab.tokens))
        self.id_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.range(len(vocab.tokens), dtype=tf.int64),
                                                tokens), default_value="<unk>")
        self.start = vocab.encode(["<eos>" if form == "stream" else "<bos>"])[0]
        self.eos = vocab.encode(["<eos>"])[0]

    def __call__(self, text):
        ids = tf.cast(self.table.lookup(tf.strings.split(text)), tf.int32)  # ragged [N, None]
        n = tf.shape(text)[0]
        start = tf.fill([n, 1], self.start)
        eos = tf.fill([n, 1], self.eos)
        inputs = tf.concat([start, ids], axis=1).to_tensor()  # [N, T]
        targets = tf.concat([ids, eos], axis=1)
        mask = tf.sequence_mask(targets.row_lengths(), tf.shape(inputs)[1], tf.float32)
        return {"inputs": inputs, "targets": targets.to_tensor(), "mask": mask,
                "lengths": tf.cast(targets.row_lengths(), tf.int32)}

    def to_text(self, ids):
        """int [N, T] ids (up to the first `<eos>`) → string [N]."""
        keep = tf.cumsum(tf.cast(tf.equal(ids, self.eos), tf.int32), axis=1, exclusive=True) == 0
        keep &= tf.not_equal(ids, self.eos)
        words = tf.ragged.boolean_mask(self.id_table.lookup(tf.cast(ids, tf.int64)), keep)
        return tf.strings.reduce_join(words, axis=1, separator=" ")


class ServingModule(tf.Module):
    """The exported object: the model, its text batcher, and the serving functions."""

    def __init__(self, model, vocab):
        super().__init__()
        self.model = model
        self.batcher = TextBatcher(vocab, type(model).input_form)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def score(self, text):
        objective = self.model.objective(self.batcher(text), training=False)
        return {"log_prob": -objective.stats["nll"], "tokens": objective.stats["tokens"]}


def export_model(model, corpus, export_dir: str) -> None:
    """Writes `model` as a SavedModel serving raw text to `export_dir` (write, then rename)."""
    module = ServingModule(model, corpus.vocab)
    signatures = {"serving_default": module.score, "score": module.score}
    extra = getattr(model, "serving_signatures", None)
    if extra is not None:
        signatures.update(extra(module.batcher))
    tmp = export_dir.rstrip("/") + ".tmp"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.saved_model.save(module, tmp, signatures=signatures)
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)


def main(argv):
    del argv
    from trainers.train import make_trainer
    from trainers.checkpoints import Checkpoints
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise app.UsageError("tflv-export needs --model_dir (a trained run) and --export_dir")
    with open(os.path.join(FLAGS.model_dir, RUN_FILE)) as f:
        run = json.load(f)
    corpus, trainer, _ = make_trainer(run, tf.distribute.get_strategy())
    if Checkpoints(trainer.checkpoint, FLAGS.model_dir).restore_latest(FLAGS.model_dir) is None:
        raise app.UsageError(f"no checkpoint in --model_dir={FLAGS.model_dir}")
    export_model(trainer.model, corpus, FLAGS.export_dir)
    print(f"exported {run['model']} (step {trainer.step}) to {FLAGS.export_dir}")


def run():
    """Console-script entry point (`tflv-export`)."""
    app.run(main)


if __name__ == "__main__":
    run()
