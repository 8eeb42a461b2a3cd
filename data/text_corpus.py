"""Your own corpus: a folder of plain text files as a `Corpus` (`data.load("text:DIR")`).

`DIR/train.txt` (required), `DIR/valid.txt`, `DIR/test.txt` (optional), UTF-8, one sentence or
document per line. Each line becomes tokens w_1..w_n through a `data.tokenize.TextPipeline`
(options `tokenizer`, `lowercase`, `unicode_form`), and the forms are those of PTB plus `bow`:

    stream     every line's tokens followed by <eos>, all lines concatenated
    sentences  <bos> w_1..w_n → w_1..w_n <eos>
    tokens     w_1..w_n
    bow        counts[v] = #{i : w_i = v} over the words in the vocabulary (<unk> and the reserved
               ids are not counted, as in the topic-model corpora); a document without such a
               word is left out of `bow` (a per-document perplexity divides by its length)

`num_tokens(split)` is Σ (n + 1), the words plus one `<eos>` per line (PTB's denominator);
`num_examples(split)` counts lines.

Options shared by the generic corpora (`text:`, `parallel:`, `tagged:`):
- vocabulary: built on `train` only, `vocab_size` ids at most (the 4 reserved ids included; the
  most frequent words are kept) of the words seen at least `min_count` times; the rest → `<unk>`
  (`data.vocab.Vocabulary.build`);
- `max_line_tokens`: an example (line, sentence, pair: either side) with more tokens is dropped
  from every split, and the count is logged and kept in `info["dropped_long"]`; by default all
  are kept (a line of 100,000 tokens is one long document: fine for `stream` and `bow`, one
  100,000-wide padded batch for the sequence forms);
- blank lines (no tokens) are skipped and counted in `info["blank_lines"]`;
- a missing `valid` or `test` split is cut from `train` (before the vocabulary is built):
  with a seeded permutation π of the N training examples (`numpy.random.default_rng(split_seed)`),
  test takes π[0:k_test] and valid π[k_test:k_test + k_valid], k = max(1, round(fraction · N))
  (`test_fraction`, `valid_fraction`; a fraction of 0 leaves that split out), each kept in file
  order; `info["held_out"]` records fraction, seed and size;
- a split with no example (an empty file, or one whose every line is blank or dropped) raises
  `DataFormatError` naming the file: no metric is ever a mean over zero tokens.
`info["text_pipeline"]` holds the tokenizer settings and `info["vocabulary"]` the vocabulary
options, both plain dicts.

`load` streams the folder from its files through tf.data (`data.text_stream`): one scan builds
the vocabulary and the sizes (`num_tokens`, `num_examples`, known before any batch), keeping one
int32 per line, and every form reads the lines again each epoch, so a corpus larger than memory
trains; `shuffle=True` draws from a buffer of 10,000 examples (`tfds:` datasets are streamed
alike). `from_lines` reads any iterable of lines into memory instead: tokens as int32 ids
(`Column`, 4 bytes a token) from which the vocabulary is built, the `stream` and `bow` arrays made
when a run first reads that form. The two give the same batches of the same lines (tests/data/
test_text_stream.py holds the streamed reader to the in-memory one); BENCHMARKS.md, "Your own
corpus at scale", measures their memory and speed.

#### References
Mikolov et al. (2010), "Recurrent neural network based language model" (the stream with <eos>);
Bowman et al. (2016), "Generating Sentences from a Continuous Space" (sentences);
Miao, Yu & Blunsom (2016), "Neural Variational Inference for Text Processing" (bag of words).
"""
from __future__ import annotations

import array
import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from data import forms
from data.corpus import Corpus
from data.errors import CorpusNotFoundError, DataFormatError
from data.pipeline import Sequences
from data.tokenize import TextPipeline
from data.vocab import EOS_ID, SPECIALS, UNK_ID, Vocabulary

SPLITS = ("train", "valid", "test")
FORMS = ("stream", "sentences", "tokens", "bow")
TRAIN = "train"


@dataclasses.dataclass(frozen=True)
class CorpusOptions:
    """The options every generic corpus takes (see the module docstring)."""
    tokenizer: str = "whitespace"
    lowercase: bool = False
    unicode_form: str | None = None
    vocab_size: int | None = None
    min_count: int = 1
    max_line_tokens: int | None = None
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0

    def __post_init__(self):
        self.pipeline()  # checks tokenizer and unicode_form
        if self.vocab_size is not None and self.vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must be > {len(SPECIALS)} (the reserved ids), got "
                             f"{self.vocab_size}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")
        if self.max_line_tokens is not None and self.max_line_tokens < 1:
            raise ValueError(f"max_line_tokens must be >= 1, got {self.max_line_tokens}")
        for name in ("valid_fraction", "test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must be < 1, got "
                             f"{self.valid_fraction} + {self.test_fraction}")

    def pipeline(self) -> TextPipeline:
        return TextPipeline(self.tokenizer, self.lowercase, self.unicode_form)

    def build_vocab(self, column: "Column", values: np.ndarray,
                    specials: bool = True) -> tuple[Vocabulary, np.ndarray]:
        """The vocabulary of the provisional ids `values` of `column` (`Vocabulary.build`'s rule
        on their counts), and int32 [len(column.tokens)]: provisional id → vocabulary id
        (`<unk>` for a word left out)."""
        tokens = column.tokens
        counts = np.bincount(values, minlength=len(tokens))
        occurrences = (itertools.repeat(tokens[i], int(counts[i])) for i in np.flatnonzero(counts))
        vocab = (Vocabulary.build(occurrences, self.min_count, self.vocab_size) if specials
                 else Vocabulary.build(occurrences, specials=False))
        # A token of no kept example (dropped, or held out of the vocabulary) maps to <unk>, or
        # to -1 without specials (it is never looked up then).
        index = {token: i for i, token in enumerate(vocab.tokens)}
        default = UNK_ID if specials else -1
        return vocab, np.array([index.get(t, default) for t in tokens], np.int32).reshape(-1)

    def info(self) -> dict[str, Any]:
        """The plain-dict record of the options (`text_pipeline`, `vocabulary`, `splits`)."""
        return {"text_pipeline": self.pipeline().options(),
                "vocabulary": {"vocab_size": self.vocab_size, "min_count": self.min_count},
                "splits": {"max_line_tokens": self.max_line_tokens,
                           "valid_fraction": self.valid_fraction,
                           "test_fraction": self.test_fraction, "split_seed": self.split_seed}}


class Column:
    """Token sequences read one at a time, stored as int32 provisional ids (ids in order of first
    sight, shared by every split of one column), so that a corpus is held as arrays of 4 bytes
    per token, not as Python strings, before its vocabulary is known."""

    def __init__(self):
        self._ids: dict[str, int] = {}
        self._values, self._lengths = array.array("i"), array.array("q")

    @property
    def tokens(self) -> list[str]:
        """Every token seen, by provisional id."""
        return list(self._ids)

    def append(self, tokens: Sequence[str]) -> None:
        ids = self._ids
        self._values.extend([ids.setdefault(t, len(ids)) for t in tokens])
        self._lengths.append(len(tokens))

    def take(self) -> Sequences:
        """The sequences appended since the last `take` (provisional ids)."""
        values, lengths = np.array(self._values, np.int32), np.array(self._lengths, np.int64)
        self._values, self._lengths = array.array("i"), array.array("q")
        return Sequences(values, lengths)


@dataclasses.dataclass
class Examples:
    """The examples of one split: `sides[k]` holds column k of every example (provisional ids of
    a `Column`), example i read from line `lines[i]` of `path` (its first line)."""
    path: str
    sides: tuple[Sequences, ...]
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)

    def select(self, keep: np.ndarray) -> "Examples":
        """The examples where `keep` (bool [N]) is true, in order."""
        return Examples(self.path, tuple(s.select(keep) for s in self.sides), self.lines[keep])


def split_files(folder: str, suffixes: Sequence[str], kind: str) -> dict[str, list[str]]:
    """Per split present in `folder`, its files `{split}{suffix}`; `train` is required.

    Raises:
      CorpusNotFoundError: naming the folder and the files it must hold.
    """
    folder = os.path.abspath(os.path.expanduser(folder))
    found = {}
    for split in SPLITS:
        paths = [os.path.join(folder, split + s) for s in suffixes]
        present = [os.path.isfile(p) for p in paths]
        if all(present):
            found[split] = paths
        elif any(present):
            missing = [p for p, here in zip(paths, present) if not here]
            raise CorpusNotFoundError(f"{kind}:{folder}: {', '.join(missing)} is missing (the "
                                      f"{split} split needs {' and '.join(paths)})")
    if TRAIN not in found:
        expected = ", ".join(f"{s}{x}" for s in SPLITS for x in suffixes)
        raise CorpusNotFoundError(
            f"{kind} corpus not found: expected the folder {folder} with the files {expected} "
            f"(UTF-8; {', '.join(TRAIN + x for x in suffixes)} required, the other splits are "
            "cut from train when missing)")
    return found


def held_out(size: int, cut: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
    """The training examples each missing split takes: `{split: bool [size]}` for the splits of
    `cut` (`{split: count}`), `test` before `valid`, consecutive runs of one permutation seeded
    by `seed`, so they never overlap.

    >>> {k: v.nonzero()[0].tolist() for k, v in held_out(5, {"valid": 2}, 0).items()}
    {'valid': [2, 4]}
    """
    order = np.random.default_rng(seed).permutation(size)
    chosen, start = {}, 0
    for split in ("test", "valid"):
        if split in cut:
            chosen[split] = np.zeros(size, bool)
            chosen[split][order[start:start + cut[split]]] = True
            start += cut[split]
    return chosen


def finish_splits(examples: dict[str, Examples], options: CorpusOptions, kind: str,
                  info: dict[str, Any]) -> dict[str, Examples]:
    """Drops over-long examples, checks no split is empty and cuts the missing splits from train.

    Records `info["dropped_long"]` and `info["held_out"]`; returns the splits in `SPLITS` order.
    """
    limit = options.max_line_tokens
    if limit is not None:
        info["dropped_long"] = {}
        for split, ex in examples.items():
            keep = np.max([side.lengths for side in ex.sides], axis=0) <= limit
            info["dropped_long"][split] = int(len(ex) - keep.sum())
            if not keep.all():
                logging.info("max_line_tokens=%d: dropping %d of %d examples of %s", limit,
                             len(ex) - keep.sum(), len(ex), ex.path)
            examples[split] = ex.select(keep)
    for split, ex in examples.items():
        if not len(ex):
            raise DataFormatError(ex.path, 1, f"at least one non-blank {kind} example"
                                  + (f" of at most {limit} tokens" if limit else ""),
                                  "an empty split")
    train = examples[TRAIN]
    fractions = {"test": options.test_fraction, "valid": options.valid_fraction}
    cut = {split: max(1, round(f * len(train)))
           for split, f in fractions.items() if split not in examples and f > 0}
    info["held_out"] = {}
    if cut:
        if len(train) - sum(cut.values()) < 1:
            raise DataFormatError(train.path, int(train.lines[-1]), f"enough examples to cut "
                                  f"{' and '.join(cut)} from train ({len(train)} are too "
                                  "few; add the split's file or lower its fraction)",
                                  "end of file")
        held = np.zeros(len(train), bool)
        for split, chosen in held_out(len(train), cut, options.split_seed).items():
            held |= chosen
            examples[split] = train.select(chosen)
            info["held_out"][split] = {"from": TRAIN, "fraction": fractions[split],
                                       "seed": options.split_seed, "examples": cut[split]}
        examples[TRAIN] = train.select(~held)
    return {split: examples[split] for split in SPLITS if split in examples}


def encode(examples: dict[str, Examples], side: int, mapping: np.ndarray) -> dict[str, Sequences]:
    """Per split, column `side` in vocabulary ids (`mapping` from `CorpusOptions.build_vocab`)."""
    return {split: Sequences(mapping[ex.sides[side].values], ex.sides[side].lengths)
            for split, ex in examples.items()}


def bag_of_words(words: Sequences, vocab_size: int) -> tuple[Sequences, np.ndarray, np.ndarray]:
    """(word ids, counts, labels) of the `bow` form: in-vocabulary words only, documents without
    one left out, labels 0."""
    document = np.repeat(np.arange(len(words)), words.lengths)
    real = words.values >= len(SPECIALS)
    keys, counts = np.unique(document[real] * vocab_size + words.values[real],
                             return_counts=True)
    lengths = np.bincount(keys // vocab_size, minlength=len(words))
    keep = lengths > 0
    return (Sequences(keys % vocab_size, lengths[keep]), counts.astype(np.int64),
            np.zeros(int(keep.sum()), np.int64))


def read_text(label: str, lines: Iterable[tuple[int, str]], pipeline: TextPipeline,
              column: Column, info: dict[str, Any]) -> Examples:
    """The non-blank lines of `lines` ((number, text) pairs of the file or source `label`) as
    one-column examples; blank lines are counted in `info["blank_lines"]`."""
    numbers, blank = [], 0
    for number, tokens in pipeline.tokenized(lines):
        if tokens:
            column.append(tokens)
            numbers.append(number)
        else:
            blank += 1
    info.setdefault("blank_lines", {})[os.path.basename(label)] = blank
    return Examples(label, (column.take(),), np.array(numbers, np.int64))


def from_lines(name: str, sources: Mapping[str, tuple[str, Iterable[tuple[int, str]]]],
               opts: CorpusOptions, info: Mapping[str, Any] | None = None) -> Corpus:
    """The text corpus `name` of, per split, `(label, (line number, text) pairs)`: a file's
    lines (`text:`) or a TFDS split's examples (`tfds:`); `info` adds facts to `corpus.info`."""
    info = {**opts.info(), **(info or {})}
    pipeline, column = opts.pipeline(), Column()
    examples = finish_splits({split: read_text(label, lines, pipeline, column, info)
                              for split, (label, lines) in sources.items()}, opts, "line", info)
    vocab, mapping = opts.build_vocab(column, examples[TRAIN].sides[0].values)
    words = encode(examples, 0, mapping)
    first_lines = {split: (ex.path, int(ex.lines[0])) for split, ex in examples.items()}
    del examples  # the provisional ids: `words` holds the corpus now
    streams = PerSplit(words, lambda w: w.wrap(suffix=EOS_ID).values)
    documents = PerSplit(words, lambda w: bag_of_words(w, len(vocab)))
    info["vocab_size"] = len(vocab)
    return Corpus(
        name, tuple(words), vocab,
        {"stream": forms.stream(streams), "sentences": forms.sentences(words),
         "tokens": forms.tokens(words), "bow": _nonempty_bow(documents, len(vocab), first_lines)},
        info, {split: int(w.lengths.sum()) + len(w) for split, w in words.items()},
        {split: len(w) for split, w in words.items()})


class PerSplit(Mapping):
    """`split → make(base[split])`, made on first access and kept: a form a run never reads
    costs neither time nor memory."""

    def __init__(self, base: Mapping[str, Any], make: Callable[[Any], Any]):
        self._base, self._make, self._made = base, make, {}

    def __getitem__(self, split: str):
        if split not in self._made:
            self._made[split] = self._make(self._base[split])
        return self._made[split]

    def __iter__(self):
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def _nonempty_bow(documents: Mapping, vocab_size: int,
                  first_lines: dict[str, tuple[str, int]]) -> Callable:
    """`forms.bow`, refusing a split in which no document has an in-vocabulary word."""
    build = forms.bow(documents, vocab_size)

    def checked(split, batching, **options):
        if split in documents and not len(documents[split][2]):
            raise DataFormatError(*first_lines[split],
                                  "a document with at least one in-vocabulary word for the bow "
                                  "form", "only <unk> words in every line")
        return build(split, batching, **options)

    return checked
