"""SavedModel export: signatures that serve raw text, tokenisation and vocabulary in the graph.

    python -m trainers.export --model_dir=runs/rnnlm_ptb --export_dir=exported/rnnlm_ptb
    (or `tflv-train ... --export_dir=DIR` at the end of training; installed as `tflv-export`)

Every exported model has `score(text: string [N]) -> {log_prob [N], tokens [N]}`, the
log-probability (or its bound, for latent-variable models) of each whitespace-tokenised string
(`score(text, target)` for translation models); a model adds its own signatures through
`serving_signatures(batcher)`, built with `tflv.models.serving`:

    sample      rnnlm, mos_lm, mixture_lm, sentence_vae,  (num_samples, max_length, temperature,
                hmm_lm                                     seed) -> {text [num_samples]}
    homotopy    sentence_vae                              (text [2], num_points, …) -> {text [P]}
    posterior   mixture_lm                                text [N] -> {probs [N, K]}
    tag         hmm, neural_hmm, factorial_hmm            text [N] -> {tags [N, T], lengths [N]}
    marginals   hmm, neural_hmm, factorial_hmm            text [N] -> {marginals [N, T, (L,) K],
                                                                       lengths [N]}
    topics      nvdm, gsm, prodlda, lda                   text [N] -> {theta [N, K]}
    translate   seq2seq, latent_attention, copy_attention text [N] -> {text [N]}
    summarize   latent_summary                            text [N] -> {text [N]}

Serving over TensorFlow Serving's REST API uses the same signatures, e.g.
`POST /v1/models/tflv:predict` with `{"signature_name": "score", "instances": [{"text": "a b"}]}`
(README.md, "Export and serving").
The SavedModel loads with `tf.saved_model.load` alone: tflv need not be importable where it is
served.
"""
from __future__ import annotations

import tensorflow as tf
from absl import app

from tflv.models import serving
from trainers import cli
from trainers import flags as tflv_flags
from trainers.run_flags import restore_run

FLAGS = tflv_flags.FLAGS
HELP_SECTIONS = [("Flags of tflv-export", (
    ("model_dir", "A trained run: its tflv_run.json and checkpoints (required)."),
    ("export_dir", "Where to write the SavedModel, replacing what is there (required)."),
    "data_dir"))]


class _Vocab(tf.Module):
    """A vocabulary in the graph: string → id and id → string tables."""

    def __init__(self, vocab):
        super().__init__()
        self.table = vocab.lookup_table()
        self.id_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.range(len(vocab.tokens), dtype=tf.int64),
                                                tf.constant(list(vocab.tokens))),
            default_value="<unk>")
        self.size = len(vocab.tokens)

    def ids(self, text):
        """string [N] → int32 ragged [N, None] (whitespace tokens).

        Unknown words map to `<unk>`, or are dropped by vocabularies without one (bag of words).
        """
        ids = tf.cast(self.table.lookup(tf.strings.split(text)), tf.int32)
        return tf.ragged.boolean_mask(ids, ids >= 0)


def _padded(ragged):
    """ragged [N, None] → (ids [N, T], mask float32 [N, T], lengths int32 [N]), T ≥ 1.

    Texts without a known word (empty, or all out of vocabulary where the vocabulary has no
    `<unk>`) get length 0: a row of padding, masked; T is at least 1 so that the models'
    recursions and attention have a position to read.
    """
    lengths = tf.cast(ragged.row_lengths(), tf.int32)
    ids = ragged.to_tensor()
    ids = tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])
    return ids, tf.sequence_mask(lengths, tf.shape(ids)[1], tf.float32), lengths


class TextBatcher(tf.Module):
    """Turns raw strings into a model batch in-graph, for every input form of `data.Corpus`.

    - `stream`, `sentences`: `{inputs, targets, mask, lengths}`. `<bos>` starts each sentence of
      a `sentences` model; stream models never saw `<bos>`, so `<eos>` starts it there, as in
      the continuous training stream.
    - `tokens`, `tagged`: `{tokens, mask, lengths}`.
    - `bow`: `{counts [N, V], lengths, labels}` (labels are zeros: unknown at serving time).
    - `parallel`: two strings, source and target: `{source…, target_inputs, target_targets…}`;
      the source alone (translation): `{source, source_mask, source_lengths}`.
    """

    def __init__(self, corpus, form: str):
        super().__init__()
        self.form = form
        if form == "parallel":
            self.source_vocab = _Vocab(corpus.source_vocab)
            vocab = corpus.target_vocab
        else:
            vocab = corpus.vocab
        self.vocab = _Vocab(vocab)
        if form in ("stream", "sentences", "parallel"):  # sentence boundaries are predicted
            self.start = vocab.encode(["<eos>" if form == "stream" else "<bos>"])[0]
            self.eos = vocab.encode(["<eos>"])[0]
        self.num_texts = 2 if form == "parallel" else 1

    def _sentence(self, ids):
        n = ids.nrows()
        inputs = tf.concat([tf.fill([n, 1], self.start), ids], axis=1)
        targets, mask, lengths = _padded(tf.concat([ids, tf.fill([n, 1], self.eos)], axis=1))
        return inputs.to_tensor(), targets, mask, lengths

    def __call__(self, text, target_text=None):
        if self.form == "parallel":
            source, source_mask, source_lengths = _padded(self.source_vocab.ids(text))
            batch = {"source": source, "source_mask": source_mask,
                     "source_lengths": source_lengths}
            if target_text is None:
                return batch
            inputs, targets, mask, lengths = self._sentence(self.vocab.ids(target_text))
            return {**batch, "target_inputs": inputs, "target_targets": targets,
                    "target_mask": mask, "target_lengths": lengths}
        ids = self.vocab.ids(text)
        if self.form in ("stream", "sentences"):
            inputs, targets, mask, lengths = self._sentence(ids)
            return {"inputs": inputs, "targets": targets, "mask": mask, "lengths": lengths}
        if self.form in ("tokens", "tagged"):
            tokens, mask, lengths = _padded(ids)
            return {"tokens": tokens, "mask": mask, "lengths": lengths}
        if self.form == "bow":
            counts = tf.math.bincount(ids, minlength=self.vocab.size, maxlength=self.vocab.size,
                                      dtype=tf.float32, axis=-1)  # [N, V]
            return {"counts": counts, "lengths": tf.reduce_sum(counts, axis=1),
                    "labels": tf.zeros([tf.shape(counts)[0]], tf.int32)}
        raise ValueError(f"no text batcher for form {self.form!r}")

    def to_text(self, ids, source=None):
        """int [N, L] ids, up to the first `<eos>` or padding (id 0) → string [N].

        Args:
          source: int [N, S], the source batch of a copy model (`parallel`): id V + s of its
            extended vocabulary (V words) is the word at source position s (`tflv.layers.copy`).
        """
        ids = tf.cast(ids, tf.int64)
        end = tf.equal(ids, self.eos) | tf.equal(ids, 0)
        keep = tf.cumsum(tf.cast(end, tf.int32), axis=1) == 0
        words = self.vocab.id_table.lookup(ids)
        if source is not None:
            source = tf.pad(tf.cast(source, tf.int64), [[0, 0], [0, 1]])  # S ≥ 1 to gather from
            last = tf.shape(source, tf.int64)[1] - 1
            position = tf.clip_by_value(ids - self.vocab.size, 0, last)
            copied = self.source_vocab.id_table.lookup(tf.gather(source, position, batch_dims=1))
            words = tf.where(ids >= self.vocab.size, copied, words)
        words = tf.ragged.boolean_mask(words, keep)
        return tf.strings.reduce_join(words, axis=1, separator=" ")


class ServingModule(tf.Module):
    """The exported object: the model, its text batcher, and `score`.

    `score(text [N]) -> {log_prob [N], tokens [N]}` (with `target` [N] as well for parallel
    models): minus the model's `nll` statistic, i.e. log p(x) for exact models and the ELBO or
    importance-sampled bound for latent-variable models.
    """

    def __init__(self, model, corpus):
        super().__init__()
        self.model = model
        self.batcher = TextBatcher(corpus, type(model).input_form)
        texts = [tf.TensorSpec([None], tf.string, name=name)
                 for name in ("text", "target")[:self.batcher.num_texts]]
        self.score = tf.function(self._score, input_signature=texts)

    def _score(self, *texts):
        def score(*texts):
            stats = self.model.objective(self.batcher(*texts), training=False).stats
            return {"log_prob": -stats["nll"], "tokens": stats["tokens"]}

        return serving.per_text(score, *texts)

    def track_variables_read_by(self, functions) -> None:
        """Tracks the `tf.Variable`s that `functions`' graphs read, so the SavedModel restores them.

        A Keras 3 variable wraps a `tf.Variable`; saved through the Keras variable, the
        SavedModel's checkpoint (its restore op, which TensorFlow Serving's C++ loader and
        `saved_model_cli run` call) fills a copy, while the signatures' graphs read the wrapped
        variable, which then nothing restores. Tracking the wrapped variables themselves, as
        Keras's own `ExportArchive` does, puts exactly what the graphs read in the checkpoint.
        """
        seen, read = set(), []
        for function in functions:
            for variable in function.get_concrete_function().variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    read.append(variable)
        self.served_variables = read


def export_model(model, corpus, export_dir: str) -> None:
    """Writes `model` as a SavedModel serving raw text to `export_dir` (write, then rename)."""
    module = ServingModule(model, corpus)
    signatures = {"serving_default": module.score, "score": module.score}
    extra = getattr(model, "serving_signatures", None)
    if extra is not None:
        signatures.update(extra(module.batcher))
    module.track_variables_read_by(signatures.values())
    tmp = export_dir.rstrip("/") + ".tmp"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.saved_model.save(module, tmp, signatures=signatures)
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)


def main(argv):
    del argv
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise app.UsageError("tflv-export needs --model_dir (a trained run) and --export_dir")
    run, corpus, trainer = restore_run(FLAGS.model_dir, TextBatcher)
    export_model(trainer.model, corpus, FLAGS.export_dir)
    print(f"exported {run['model']} (step {trainer.step}) to {FLAGS.export_dir}")


def run():
    """Console-script entry point (`tflv-export`)."""
    cli.run(main, __doc__, HELP_SECTIONS)


if __name__ == "__main__":
    run()
