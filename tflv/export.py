"""Export a trained model as a SavedModel that serves raw text with its corpus' own text pipeline.

    export_saved_model(model, corpus, export_dir)

writes the SavedModel the trainer writes after training and `tflv-export` writes (both call this
function) for any model, trained by the trainer or in Python: no command line, no run directory.

Every exported model has `score(text: string [N]) -> {log_prob [N], tokens [N], unknown_words [N]}`:
the log-probability (or its bound, for latent-variable models) of each text, as the model's
`objective` computes it in evaluation (minus its `nll` statistic), and how many of the text's
words the vocabulary does not hold (`score(text, target)` for translation models, which adds
`target_unknown_words`). A model adds its own signatures through `serving_signatures(batcher)`
(`tflv.models.serving`; every per-text one reports `unknown_words` too).

A text is read as training read it: `data.tokenize.TextPipeline` (the corpus' recorded
`info["text_pipeline"]`: lower-casing and the tokenizer, in TensorFlow ops, the one
implementation the corpora use), then the corpus' vocabularies (`<unk>` for a word they lack; a
bag-of-words vocabulary without `<unk>` drops it, and a bag of words never counts `<unk>` or the
reserved ids, as the `bow` form does), then the batch of the model's input form (`TextBatcher`).
A corpus recorded with a `unicode_form` (NFC, NFKC, ...) is served without normalisation, which no
TensorFlow op does: clients send text in that form (the export warns).

The SavedModel loads with `tf.saved_model.load` alone, and serves through `saved_model_cli run`
and TensorFlow Serving: tflv need not be importable where it is served.

Example:
  >>> import os, tempfile, data
  >>> from tflv.models import RNNLM
  >>> folder = tempfile.mkdtemp()
  >>> with open(os.path.join(folder, "train.txt"), "w") as f:
  ...     _ = f.write("The cat sat.\\nA dog ran.\\n" * 20)
  >>> corpus = data.load(f"text:{folder}", lowercase=True, tokenizer="punctuation")
  >>> batcher = TextBatcher(corpus, "sentences")     # what every signature reads text with
  >>> corpus.vocab.decode(batcher(tf.constant(["THE cat ran!"]))["targets"][0])
  ['the', 'cat', 'ran', '<unk>', '<eos>']
  >>> batcher.unknown_words(tf.constant(["THE cat ran!"]))["unknown_words"].numpy()
  array([1], dtype=int32)
  >>> model = RNNLM(vocab_size=len(corpus.vocab), embed_dim=8, hidden_dim=8)  # then train it
  >>> export_saved_model(model, corpus, os.path.join(folder, "export"))  # doctest: +SKIP
  >>> served = tf.saved_model.load(os.path.join(folder, "export"))   # doctest: +SKIP
  >>> served.signatures["score"](text=tf.constant(["THE cat ran!"]))  # doctest: +SKIP
  {'log_prob': <tf.Tensor: ...>, 'tokens': <tf.Tensor: ...>,
   'unknown_words': <tf.Tensor: shape=(1,), dtype=int32, numpy=array([1], dtype=int32)>}

#### References
No mathematics here (the scores are the models' own).
"""
from __future__ import annotations

import warnings

import tensorflow as tf

from data.tokenize import TextPipeline
from data.vocab import SPECIALS, UNK_ID
from tflv.models import serving


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
        self.specials = vocab.specials

    def ids(self, tokens: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """string ragged [N, None] → (int32 ragged [N, None] ids, int32 [N] unknown words).

        An unknown word maps to `<unk>`, or is dropped by a vocabulary without one (bag of words).
        """
        ids = tf.cast(self.table.lookup(tokens), tf.int32)
        unknown = UNK_ID if self.specials else -1
        count = tf.reduce_sum(tf.cast(tf.equal(ids, unknown), tf.int32), axis=1)
        return tf.ragged.boolean_mask(ids, ids >= 0), count


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

    Strings are tokenised by the corpus' `TextPipeline` (`tokenize`) and looked up in its
    vocabularies; then

    - `stream`, `sentences`: `{inputs, targets, mask, lengths}`. `<bos>` starts each sentence of
      a `sentences` model; stream models never saw `<bos>`, so `<eos>` starts it there, as in
      the continuous training stream.
    - `tokens`, `tagged`: `{tokens, mask, lengths}`.
    - `bow`: `{counts [N, V], lengths, labels}` (labels are zeros: unknown at serving time;
      `<unk>` and the reserved ids are not counted).
    - `parallel`: two strings, source and target: `{source…, target_inputs, target_targets…}`;
      the source alone (translation): `{source, source_mask, source_lengths}`.

    `unknown_words(text)` counts each string's words that the vocabulary lacks.
    """

    def __init__(self, corpus, form: str):
        super().__init__()
        self.form = form
        self.pipeline = TextPipeline.of(corpus.info)
        if self.pipeline.unicode_form:
            warnings.warn(f"{corpus.name} was read in Unicode form {self.pipeline.unicode_form}, "
                          "which the SavedModel's signatures do not apply (TensorFlow has no "
                          "normalisation op): send text in that form", stacklevel=2)
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

    def _ids(self, text, vocab=None):
        return (vocab or self.vocab).ids(self.pipeline.tokenize(text))

    def unknown_words(self, text, target_text=None) -> dict[str, tf.Tensor]:
        """`{unknown_words: int32 [N]}` (and `target_unknown_words` for a target text): how many
        words of each text are out of the vocabulary (of the source, for `parallel`)."""
        vocab = self.source_vocab if self.form == "parallel" else self.vocab
        counts = {"unknown_words": self._ids(text, vocab)[1]}
        if target_text is not None:
            counts["target_unknown_words"] = self._ids(target_text)[1]
        return counts

    def _sentence(self, ids):
        n = ids.nrows()
        inputs = tf.concat([tf.fill([n, 1], self.start), ids], axis=1)
        targets, mask, lengths = _padded(tf.concat([ids, tf.fill([n, 1], self.eos)], axis=1))
        return inputs.to_tensor(), targets, mask, lengths

    def __call__(self, text, target_text=None):
        if self.form == "parallel":
            source, source_mask, source_lengths = _padded(self._ids(text, self.source_vocab)[0])
            batch = {"source": source, "source_mask": source_mask,
                     "source_lengths": source_lengths}
            if target_text is None:
                return batch
            inputs, targets, mask, lengths = self._sentence(self._ids(target_text)[0])
            return {**batch, "target_inputs": inputs, "target_targets": targets,
                    "target_mask": mask, "target_lengths": lengths}
        ids = self._ids(text)[0]
        if self.form in ("stream", "sentences"):
            inputs, targets, mask, lengths = self._sentence(ids)
            return {"inputs": inputs, "targets": targets, "mask": mask, "lengths": lengths}
        if self.form in ("tokens", "tagged"):
            tokens, mask, lengths = _padded(ids)
            return {"tokens": tokens, "mask": mask, "lengths": lengths}
        if self.form == "bow":
            if self.vocab.specials:  # the bow form counts words only
                ids = tf.ragged.boolean_mask(ids, ids >= len(SPECIALS))
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

    `score(text [N]) -> {log_prob [N], tokens [N], unknown_words [N]}` (with `target` [N] as
    well for parallel models, and `target_unknown_words`): minus the model's `nll` statistic,
    i.e. log p(x) for exact models and the ELBO or importance-sampled bound for latent-variable
    models.
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
            return {"log_prob": -stats["nll"], "tokens": stats["tokens"],
                    **self.batcher.unknown_words(*texts)}

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


def export_saved_model(model, corpus, export_dir: str) -> dict:
    """Writes `model` as a SavedModel serving raw text to `export_dir` (write, then rename).

    Args:
      model: a built tflv model (`tflv.models`), trained in Python or by the trainer; its
        `input_form` names the batches its signatures build from text.
      corpus: the `data.Corpus` it was trained on, or one with the same vocabularies and
        `info["text_pipeline"]` (e.g. `trainers.run_record.with_run_vocab`); the model's
        `prepare_export` reads it first (neural_template without templates yet: the training
        sentences, to extract them).
      export_dir: the SavedModel's directory, replaced if it exists.

    Returns:
      {name: tf.function}, the signatures written (`score`, `serving_default` = `score`, and the
      model's `serving_signatures`).
    """
    prepare = getattr(model, "prepare_export", None)
    if prepare is not None:  # e.g. neural_template's templates, where it holds none yet
        prepare(corpus)
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
    return signatures
