"""`text:DIR` streamed from its files through tf.data: a corpus larger than memory.

`data.text_stream.load` reads a `text:` folder this way; the forms and options are the ones
`data.text_corpus` states, with the same batches in the same order when unshuffled.

*One scan.* Each split file is read once, line by line (`data.tokenize.read_lines`: strict UTF-8,
errors naming file and line), and tokenised in batches of lines (`TextPipeline.tokenized`); the
scan keeps one int32 per line (its number of tokens, 0 for a blank line) and the word counts of
`train`, never the tokens. From the lengths come the splits (blank lines skipped, lines over
`max_line_tokens` dropped, a missing `valid` / `test` cut from train by the seeded permutation of
`data.text_corpus`), the evaluation sizes (`num_examples`: kept lines; `num_tokens`: Σ (n + 1),
known before any batch is read) and the line each example is read from. Words of lines held out
of `train` are read again (those lines only) and subtracted from the counts, so the vocabulary
(`Vocabulary.build`'s rule) is that of the examples `train` keeps.

*Forms from the files.* A batch is read from the file each epoch: `tf.data.TextLineDataset` (its
`\\r\\n` ends read as `\\n`; a leading byte-order mark dropped), the split's lines selected by
their line index, tokenised by the same `TextPipeline.tokenize` (Unicode normalisation, which
has no TensorFlow op, through `tf.numpy_function`) and looked up in the vocabulary's table.

    sentences, tokens   padded batches; `max_length` drops long `train` examples; `pad_to`,
                        `bucket_boundaries` as `data.pipeline.sequence_batches`
    bow                 documents of in-vocabulary words, densified per batch
    stream              `data.pipeline`'s layout (B rows of R = ⌈N / B⌉ consecutive pairs, row
                        b holding pairs bR .. bR + R − 1, window w of every row in batch w),
                        read by B readers that each start at the line holding token bR (lines
                        before it are skipped unread by the tokenizer), interleaved

Shuffling (`shuffle=True`) draws from a buffer of `SHUFFLE_BUFFER` examples (stream: windows),
seeded and different each epoch, instead of permuting the whole split: memory stays bounded
by the buffer, not the corpus.

#### References
Mikolov et al. (2010), "Recurrent neural network based language model" (the stream with <eos>);
Zaremba, Sutskever & Vinyals (2014), "Recurrent Neural Network Regularization" (the batchify
layout).
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from data import text_corpus
from data.corpus import Corpus
from data.errors import DataFormatError
from data.pipeline import STREAM_START, Batching
from data.tokenize import TextPipeline, batches, read_lines
from data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, Vocabulary

SHUFFLE_BUFFER = 10_000
_LINES_PER_CALL = 1024  # lines tokenised per call of the tokenizer in a dataset
_SCAN_LINES = 4096  # lines tokenised per call in the scan


@dataclasses.dataclass(frozen=True)
class LineSource:
    """The lines of one split, read twice: `numbered()` yields (1-based line number, text) for
    the scan (it raises `DataFormatError` on bad input), `dataset()` is a tf.data.Dataset of the
    same lines (string scalars) for the batches. `path` names it in errors (a file, or
    `tfds:NAME/SPLIT`)."""
    path: str
    numbered: Callable[[], Iterable[tuple[int, str]]]
    dataset: Callable[[], tf.data.Dataset]
    byte_order_mark: bool = False  # whether a byte-order mark starting line 1 is dropped

    @classmethod
    def file(cls, path: str) -> "LineSource":
        """A UTF-8 text file (`read_lines`; `\\r\\n` ends and a leading byte-order mark)."""
        return cls(path, lambda: read_lines(path), lambda: tf.data.TextLineDataset(path), True)


@dataclasses.dataclass
class Split:
    """The examples of one split: the lines of `source` where `keep` (bool [lines]) is true, with
    `lengths` (int [examples]) tokens each and `numbers` (int [examples]) their line indices."""
    source: LineSource
    keep: np.ndarray
    lengths: np.ndarray

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def numbers(self) -> np.ndarray:
        return np.flatnonzero(self.keep)

    def __len__(self) -> int:
        return len(self.lengths)


def scan(lines: Iterable[tuple[int, str]], pipeline: TextPipeline,
         counts: collections.Counter | None) -> np.ndarray:
    """int32 [lines]: the number of tokens of each (number, text) of `lines`, tokenised in
    batches of lines; the tokens are added to `counts` (as UTF-8 bytes), never kept."""
    lengths = []
    for chunk in batches(lines, _SCAN_LINES):
        ragged = pipeline.tokenize(tf.constant(
            [pipeline.normalise_unicode(line) for _, line in chunk], tf.string))
        lengths.append(ragged.row_lengths().numpy().astype(np.int32))
        if counts is not None:
            counts.update(ragged.flat_values.numpy().tolist())
    return np.concatenate(lengths) if lengths else np.zeros(0, np.int32)


def load(folder: str, **options) -> Corpus:
    """The `text:` corpus in `folder`, streamed (see the module docstring, and `data.text_corpus`
    for the files and options).

    Examples:
      >>> import os, tempfile
      >>> folder = tempfile.mkdtemp()                    # e.g. my_corpus/ with train.txt
      >>> with open(os.path.join(folder, "train.txt"), "w") as f:
      ...     _ = f.write("The cat sat .\\nA dog ran .\\n" * 50)
      >>> corpus = load(folder, lowercase=True, vocab_size=10000)
      >>> corpus.forms
      ('stream', 'sentences', 'tokens', 'bow')
    """
    opts = text_corpus.CorpusOptions(**options)
    files = text_corpus.split_files(folder, [".txt"], "text")
    return from_sources(f"text:{folder}", {split: LineSource.file(paths[0])
                                           for split, paths in files.items()}, opts)


def from_sources(name: str, sources: Mapping[str, LineSource], opts,
                 info: Mapping[str, Any] | None = None) -> Corpus:
    """The streamed text corpus `name` of, per split, its `LineSource` (a file's lines for
    `text:`, a TFDS split's examples for `tfds:`); `info` adds facts to `corpus.info`."""
    info = {**opts.info(), **(info or {})}
    pipeline, counts = opts.pipeline(), collections.Counter()
    limit = opts.max_line_tokens
    splits, blank, dropped = {}, {}, {}
    for split, source in sources.items():
        lengths = scan(source.numbered(), pipeline,
                       counts if split == text_corpus.TRAIN else None)
        keep = (lengths > 0) & ((lengths <= limit) if limit else True)
        blank[os.path.basename(source.path)] = int((lengths == 0).sum())
        dropped[split] = int((lengths > 0).sum() - keep.sum())
        if dropped[split]:
            logging.info("max_line_tokens=%d: dropping %d of %d examples of %s", limit,
                         dropped[split], int((lengths > 0).sum()), source.path)
        splits[split] = Split(source, keep, lengths[keep])
        if split == text_corpus.TRAIN:
            read = lengths > 0  # the lines whose words the scan counted
    info["blank_lines"] = blank
    if limit is not None:
        info["dropped_long"] = dropped
    for split in splits.values():
        if not len(split):
            raise DataFormatError(split.path, 1, "at least one non-blank line example"
                                  + (f" of at most {limit} tokens" if limit else ""),
                                  "an empty split")
    _cut_missing_splits(splits, opts, info)
    train = splits[text_corpus.TRAIN]
    removed = read & ~train.keep  # too long, or held out: not words of train's examples
    if removed.any():
        gone = collections.Counter()
        scan(((n, line) for n, line in train.source.numbered() if removed[n - 1]), pipeline, gone)
        counts.subtract(gone)
    occurrences = (itertools.repeat(t.decode("utf-8"), c) for t, c in counts.items() if c > 0)
    vocab = Vocabulary.build(occurrences, opts.min_count, opts.vocab_size)
    info["vocab_size"] = len(vocab)
    reader = LineReader(pipeline, vocab)
    splits = {split: splits[split] for split in text_corpus.SPLITS if split in splits}
    return Corpus(
        name, tuple(splits), vocab,
        {"stream": reader.stream_form(splits), "sentences": reader.sequence_form(splits, True),
         "tokens": reader.sequence_form(splits, False), "bow": reader.bow_form(splits)},
        info, {split: int(s.lengths.sum()) + len(s) for split, s in splits.items()},
        {split: len(s) for split, s in splits.items()})


def _cut_missing_splits(splits: dict[str, Split], opts, info: dict) -> None:
    """Cuts `valid` / `test` from train when missing (the rule of `data.text_corpus`)."""
    train = splits[text_corpus.TRAIN]
    fractions = {"test": opts.test_fraction, "valid": opts.valid_fraction}
    cut = {split: max(1, round(f * len(train)))
           for split, f in fractions.items() if split not in splits and f > 0}
    info["held_out"] = {}
    if not cut:
        return
    numbers = train.numbers
    if len(train) - sum(cut.values()) < 1:
        raise DataFormatError(train.path, int(numbers[-1]) + 1, "enough examples to cut "
                              f"{' and '.join(cut)} from train ({len(train)} are too few; add "
                              "the split's file or lower its fraction)", "end of file")
    held = np.zeros(len(train), bool)
    for split, chosen in text_corpus.held_out(len(train), cut, opts.split_seed).items():
        held |= chosen
        keep = np.zeros_like(train.keep)
        keep[numbers[chosen]] = True
        splits[split] = Split(train.source, keep, train.lengths[chosen])
        info["held_out"][split] = {"from": text_corpus.TRAIN, "fraction": fractions[split],
                                   "seed": opts.split_seed, "examples": cut[split]}
    keep = train.keep.copy()
    keep[numbers[held]] = False
    splits[text_corpus.TRAIN] = Split(train.source, keep, train.lengths[~held])


class LineReader:
    """The examples of a `Split` as a dataset of int32 id vectors, read from its file."""

    def __init__(self, pipeline: TextPipeline, vocab: Vocabulary):
        self.pipeline, self.vocab = pipeline, vocab
        self.table = vocab.lookup_table()

    def _normalise(self, lines):
        form = self.pipeline.unicode_form

        def normalise(values):
            return np.array([unicodedata.normalize(form, v.decode()).encode() for v in values],
                            object)

        return tf.reshape(tf.numpy_function(normalise, [lines], tf.string), [-1])

    def batches(self, split: Split, first_line: int = 0, then: Callable | None = None):
        """The examples of `split` whose line index is ≥ `first_line`, in file order, a batch of
        lines at a time: int32 ragged [b, None] ids (or `then` of them). Lines are selected,
        tokenised and looked up per batch, not per line."""
        keep, bom = tf.constant(split.keep), split.source.byte_order_mark

        def ids(numbers, text):
            if bom:
                text = tf.where(numbers == 0, tf.strings.regex_replace(text, "^\ufeff", ""),
                                text)
            text = tf.boolean_mask(text, tf.gather(keep, numbers))
            if self.pipeline.unicode_form:
                text = self._normalise(text)
            ragged = tf.cast(self.table.lookup(self.pipeline.tokenize(text)), tf.int32)
            return ragged if then is None else then(ragged)

        lines = split.source.dataset().enumerate().skip(first_line).batch(_LINES_PER_CALL)
        return lines.map(ids, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def sequence_form(self, splits: dict[str, Split], sentences: bool):
        """The `sentences` (`sentences=True`) or `tokens` form builder."""

        def build(split: str, batching: Batching, max_length: int | None = None,
                  pad_to: int | None = None, bucket_boundaries: list[int] | None = None):
            s = splits[split]
            lengths = s.lengths

            def fields(ids):  # int32 ragged [b, None] → the form's fields
                n = tf.cast(ids.row_lengths(), tf.int32)
                if not sentences:
                    return {"tokens": ids, "lengths": n}
                column = tf.ones([ids.nrows(), 1], tf.int32)
                return {"inputs": tf.concat([column * BOS_ID, ids], 1),
                        "targets": tf.concat([ids, column * EOS_ID], 1), "lengths": n + 1}

            data = _examples(self.batches(s, then=fields))
            if max_length is not None:
                if not isinstance(max_length, (int, np.integer)) or max_length < 1:
                    raise ValueError(f"max_length must be a positive integer, got "
                                     f"{max_length!r}")
                too_long = int((lengths > max_length).sum())
                if split == text_corpus.TRAIN:
                    logging.info("max_length=%d: dropping %d of %d training examples (evaluation "
                                 "splits keep all)", max_length, too_long, len(lengths))
                    data = data.filter(
                        lambda example: example["lengths"] - int(sentences) <= max_length)
                    lengths = lengths[lengths <= max_length]
                else:
                    logging.info("max_length=%d is not applied to split %r: evaluation keeps all "
                                 "%d examples (%d longer)", max_length, split, len(lengths),
                                 too_long)
            longest = int(lengths.max(initial=0)) + int(sentences)
            if pad_to is not None and (not isinstance(pad_to, (int, np.integer))
                                       or pad_to < longest):
                raise ValueError(f"pad_to={pad_to!r} must be an integer >= the longest sequence "
                                 f"of this split ({longest}); raise it, or drop long training "
                                 "examples with max_length")
            sequence = "inputs" if sentences else "tokens"
            data = _order(data, batching, len(lengths))
            shapes = {name: ([] if name == "lengths" else [pad_to]) for name in data.element_spec}
            if bucket_boundaries is None:
                batches = data.padded_batch(batching.batch_size, shapes)
            else:
                bounds = list(bucket_boundaries)
                if not bounds or any(not isinstance(x, (int, np.integer)) or x < 1
                                     for x in bounds) or any(x >= y for x, y in
                                                             zip(bounds, bounds[1:])):
                    raise ValueError("bucket_boundaries must be increasing positive integers, "
                                     f"got {bucket_boundaries!r}")
                batches = data.bucket_by_sequence_length(
                    lambda example: example["lengths"], bounds,
                    [batching.batch_size] * (len(bounds) + 1), shapes)

            def masked(batch):
                width = tf.shape(batch[sequence])[1]
                return {**batch, "mask": tf.sequence_mask(batch["lengths"], width, tf.float32)}

            return batches.map(masked).prefetch(tf.data.AUTOTUNE)

        return build

    def bow_form(self, splits: dict[str, Split]):
        """The `bow` form builder: in-vocabulary words only, documents without one left out."""
        size, checked = len(self.vocab), {}

        def documents(split):
            words = _examples(self.batches(splits[split], then=lambda ids: tf.ragged.boolean_mask(
                ids, ids >= len(SPECIALS))))
            return words.filter(lambda ids: tf.size(ids) > 0)

        def build(split: str, batching: Batching):
            if split not in checked:  # the first document with a known word, if any
                checked[split] = bool(list(documents(split).take(1)))
            if not checked[split]:
                s = splits[split]
                raise DataFormatError(s.path, int(s.numbers[0]) + 1, "a document with at least "
                                      "one in-vocabulary word for the bow form",
                                      "only <unk> words in every line")
            data = _order(documents(split), batching, len(splits[split]))

            def dense(ids):
                counts = tf.math.bincount(ids, minlength=size, maxlength=size, dtype=tf.float32,
                                          axis=-1)
                return {"counts": counts, "labels": tf.zeros([tf.shape(counts)[0]], tf.int32),
                        "lengths": tf.reduce_sum(counts, axis=1)}

            return data.ragged_batch(batching.batch_size).map(dense).prefetch(tf.data.AUTOTUNE)

        return build

    def stream_form(self, splits: dict[str, Split]):
        """The `stream` form builder (option `seq_len`, 35): `data.pipeline.stream_batches`'
        layout, read by one reader per row."""

        def build(split: str, batching: Batching, seq_len: int = 35):
            if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) \
                    or seq_len < 1:
                raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
            s = splits[split]
            n, b = int(s.lengths.sum()) + len(s), batching.batch_size
            row = -(-n // b)
            windows = max(-(-row // seq_len), 1)
            # Token x_p (p ≥ 1) lies in example k with ends[k - 1] < p ≤ ends[k].
            ends = np.cumsum(s.lengths.astype(np.int64) + 1)
            before = np.concatenate([[0], ends])  # tokens before example k
            numbers = s.numbers

            def reader(r):  # the W windows of row r
                start = r * row  # the row's first input is x_start; x_0 is STREAM_START
                pairs = tf.clip_by_value(n - start, 0, row)
                k = tf.searchsorted(ends, tf.reshape(tf.maximum(start, 1), [1]))[0]
                k = tf.minimum(k, len(numbers) - 1)
                offset = tf.maximum(start, 1) - 1 - tf.gather(before, k)
                tokens = self.batches(s, tf.gather(numbers, k), then=lambda ids: tf.concat(
                    [ids, tf.ones([ids.nrows(), 1], tf.int32) * EOS_ID], 1).flat_values)
                tokens = tokens.unbatch().skip(offset)
                head = tf.data.Dataset.from_tensor_slices(
                    tf.fill([tf.cast(tf.equal(start, 0), tf.int32)], STREAM_START))
                tokens = head.concatenate(tokens).take(tf.cast(pairs + 1, tf.int64))
                padding = tf.data.Dataset.from_tensors(PAD_ID).repeat()
                tokens = tokens.concatenate(padding).take(windows * seq_len + 1)
                positions = tf.data.Dataset.range(windows * seq_len + 1)
                both = tf.data.Dataset.zip(tokens, positions).window(
                    seq_len + 1, shift=seq_len, drop_remainder=True)
                return both.flat_map(lambda t, p: tf.data.Dataset.zip(
                    t.batch(seq_len + 1), p.batch(seq_len + 1)))

            rows = tf.data.Dataset.range(b).interleave(
                lambda r: reader(r).map(lambda t, p: (t, p, r)),
                cycle_length=b, block_length=1)

            def layout(tokens, positions, r):  # [B, S + 1] each → the batch
                pairs = tf.clip_by_value(n - r * row, 0, row)  # [B]
                valid = positions[:, 1:] <= pairs[:, None]
                inputs = tf.where(valid, tokens[:, :-1], PAD_ID)
                targets = tf.where(valid, tokens[:, 1:], PAD_ID)
                return {"inputs": inputs, "targets": targets, "mask": tf.cast(valid, tf.float32)}

            batches = rows.batch(b).map(layout)
            if batching.shuffle:
                batches = batches.shuffle(min(windows, max(SHUFFLE_BUFFER // b, 1)),
                                          seed=batching.seed, reshuffle_each_iteration=True)
            if batching.repeat:
                batches = batches.repeat()
            return batches.prefetch(tf.data.AUTOTUNE)

        return build


def _examples(batches: tf.data.Dataset) -> tf.data.Dataset:
    """The rows of ragged batches as dense vectors (what `padded_batch` takes)."""
    return batches.unbatch().map(lambda row: tf.nest.map_structure(tf.convert_to_tensor, row))


def _order(data: tf.data.Dataset, batching: Batching, size: int) -> tf.data.Dataset:
    """`data` shuffled through a buffer of at most `SHUFFLE_BUFFER` examples (seeded, new each
    epoch) if `batching.shuffle`, and repeated if `batching.repeat`."""
    if batching.shuffle:
        data = data.shuffle(max(min(size, SHUFFLE_BUFFER), 1), seed=batching.seed,
                            reshuffle_each_iteration=True)
    return data.repeat() if batching.repeat else data

