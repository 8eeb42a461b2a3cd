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

#### References
Mikolov et al. (2010), "Recurrent neural network based language model" (the stream with <eos>);
Bowman et al. (2016), "Generating Sentences from a Continuous Space" (sentences);
Miao, Yu & Blunsom (2016), "Neural Variational Inference for Text Processing" (bag of words).
"""
from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from absl import logging

from data import forms
from data.corpus import Corpus
from data.errors import CorpusNotFoundError, DataFormatError
from data.pipeline import Sequences
from data.tokenize import TextPipeline, read_lines
from data.vocab import EOS_ID, SPECIALS, Vocabulary

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

    def build_vocab(self, token_lists: Iterable[Sequence[str]]) -> Vocabulary:
        return Vocabulary.build(token_lists, self.min_count, self.vocab_size)

    def info(self) -> dict[str, Any]:
        """The plain-dict record of the options (`text_pipeline`, `vocabulary`, `splits`)."""
        return {"text_pipeline": self.pipeline().options(),
                "vocabulary": {"vocab_size": self.vocab_size, "min_count": self.min_count},
                "splits": {"max_line_tokens": self.max_line_tokens,
                           "valid_fraction": self.valid_fraction,
                           "test_fraction": self.test_fraction, "split_seed": self.split_seed}}


@dataclasses.dataclass
class Examples:
    """The examples of one split: `items[i]` is a tuple of token lists (one per side or column),
    read from line `lines[i]` of `path` (its first line, for a multi-line example)."""
    path: str
    items: list[tuple[list[str], ...]]
    lines: list[int]

    def select(self, keep: Sequence[int]) -> "Examples":
        return Examples(self.path, [self.items[i] for i in keep], [self.lines[i] for i in keep])


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


def finish_splits(examples: dict[str, Examples], options: CorpusOptions, kind: str,
                  info: dict[str, Any]) -> dict[str, Examples]:
    """Drops over-long examples, checks no split is empty and cuts the missing splits from train.

    Records `info["dropped_long"]` and `info["held_out"]`; returns the splits in `SPLITS` order.
    """
    limit = options.max_line_tokens
    if limit is not None:
        info["dropped_long"] = {}
        for split, ex in examples.items():
            keep = [i for i, item in enumerate(ex.items) if max(map(len, item)) <= limit]
            info["dropped_long"][split] = len(ex.items) - len(keep)
            if len(keep) < len(ex.items):
                logging.info("max_line_tokens=%d: dropping %d of %d examples of %s", limit,
                             len(ex.items) - len(keep), len(ex.items), ex.path)
            examples[split] = ex.select(keep)
    for split, ex in examples.items():
        if not ex.items:
            raise DataFormatError(ex.path, 1, f"at least one non-blank {kind} example"
                                  + (f" of at most {limit} tokens" if limit else ""),
                                  "an empty split")
    train = examples[TRAIN]
    fractions = {"test": options.test_fraction, "valid": options.valid_fraction}
    cut = {split: max(1, round(f * len(train.items)))
           for split, f in fractions.items() if split not in examples and f > 0}
    info["held_out"] = {}
    if cut:
        if len(train.items) - sum(cut.values()) < 1:
            raise DataFormatError(train.path, train.lines[-1], f"enough examples to cut "
                                  f"{' and '.join(cut)} from train ({len(train.items)} are too "
                                  "few; add the split's file or lower its fraction)",
                                  "end of file")
        order = np.random.default_rng(options.split_seed).permutation(len(train.items))
        start, held = 0, set()
        for split in ("test", "valid"):
            if split in cut:
                chosen = sorted(order[start:start + cut[split]].tolist())
                start += cut[split]
                held.update(chosen)
                examples[split] = train.select(chosen)
                info["held_out"][split] = {"from": TRAIN, "fraction": fractions[split],
                                           "seed": options.split_seed, "examples": len(chosen)}
        examples[TRAIN] = train.select([i for i in range(len(train.items)) if i not in held])
    return {split: examples[split] for split in SPLITS if split in examples}


def encode(vocab: Vocabulary, token_lists: Sequence[Sequence[str]]) -> Sequences:
    """The id `Sequences` of `token_lists` (unknown tokens → `<unk>`)."""
    values = np.array(vocab.encode(itertools.chain.from_iterable(token_lists)), np.int64)
    return Sequences(values, np.array([len(t) for t in token_lists], np.int64))


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


def read_text(path: str, pipeline: TextPipeline, info: dict[str, Any]) -> Examples:
    """The non-blank lines of a text file as one-side examples (blank lines counted in info)."""
    items, lines, blank = [], [], 0
    for number, line in read_lines(path):
        tokens = pipeline.tokens(line)
        if tokens:
            items.append((tokens,))
            lines.append(number)
        else:
            blank += 1
    info.setdefault("blank_lines", {})[os.path.basename(path)] = blank
    return Examples(path, items, lines)


def load(folder: str, **options) -> Corpus:
    """The `text:` corpus in `folder` (see the module docstring for the files and options).

    Examples:
      >>> corpus = load("my_corpus", lowercase=True, vocab_size=10000)
      >>> corpus.forms
      ('stream', 'sentences', 'tokens', 'bow')
    """
    opts = CorpusOptions(**options)
    files = split_files(folder, [".txt"], "text")
    info = opts.info()
    pipeline = opts.pipeline()
    examples = finish_splits({split: read_text(paths[0], pipeline, info)
                              for split, paths in files.items()}, opts, "line", info)
    vocab = opts.build_vocab(item[0] for item in examples[TRAIN].items)
    words = {split: encode(vocab, [item[0] for item in ex.items])
             for split, ex in examples.items()}
    streams = {split: w.wrap(suffix=EOS_ID).values for split, w in words.items()}
    documents = {split: bag_of_words(w, len(vocab)) for split, w in words.items()}
    info.update(vocab_size=len(vocab),
                bow_documents={split: len(d[2]) for split, d in documents.items()})
    return Corpus(
        f"text:{folder}", tuple(examples), vocab,
        {"stream": forms.stream(streams), "sentences": forms.sentences(words),
         "tokens": forms.tokens(words), "bow": _nonempty_bow(documents, len(vocab), examples)},
        info, {split: len(s) for split, s in streams.items()},
        {split: len(w) for split, w in words.items()})


def _nonempty_bow(documents, vocab_size: int, examples: dict[str, Examples]) -> Callable:
    """`forms.bow`, refusing a split in which no document has an in-vocabulary word."""
    build = forms.bow(documents, vocab_size)

    def checked(split, batching, **options):
        if split in documents and not len(documents[split][2]):
            raise DataFormatError(examples[split].path, examples[split].lines[0],
                                  "a document with at least one in-vocabulary word for the bow "
                                  "form", "only <unk> words in every line")
        return build(split, batching, **options)

    return checked
