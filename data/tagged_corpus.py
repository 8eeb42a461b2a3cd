"""Your own tagged corpus: CoNLL-style columns as a `Corpus` (`data.load("tagged:DIR")`).

`DIR/train.txt` (required), `DIR/valid.txt`, `DIR/test.txt` (optional), UTF-8: one token per
line as whitespace-separated columns, the word first and the tag in column `tag_column` (the
last by default), a blank line after each sentence (CoNLL-2000's `word POS chunk`, CoNLL-2003's
`word POS chunk NER`, or just `word tag`). Every token line of a file has as many columns as its
first (at least 2), else `DataFormatError` names file and line; CoNLL-2003's `-DOCSTART-` lines
are skipped. Words are normalised by `lowercase` / `unicode_form` (the columns are the
tokenization, so `tokenizer` stays `whitespace`); tags are kept as written.

The word vocabulary is built on train (the options of `data.text_corpus`); the tag set has no
reserved ids and covers every split (as CoNLL-2000's: a tag seen only in test still has an id).
It is `pos_vocab`, the tag names taggers report. Forms: `sentences`, `tokens`, `tagged` (`tags`).
`num_tokens(split)` counts words; `info["num_tags"]` is the size of the tag set.

#### References
Tjong Kim Sang & Buchholz (2000), "Introduction to the CoNLL-2000 Shared Task: Chunking".
Tjong Kim Sang & De Meulder (2003), "Introduction to the CoNLL-2003 Shared Task:
Language-Independent Named Entity Recognition".
"""
from __future__ import annotations

import numpy as np

from data import forms
from data.corpus import Corpus
from data.errors import DataFormatError
from data.text_corpus import (TRAIN, Column, CorpusOptions, Examples, encode, finish_splits,
                              split_files)
from data.tokenize import TextPipeline, read_lines

DOCSTART = "-DOCSTART-"
FORMS = ("sentences", "tokens", "tagged")


def read_conll(path: str, pipeline: TextPipeline, tag_column: int,
               columns: tuple[Column, Column]) -> Examples:
    """The sentences of a CoNLL file as (words, tags) examples, numbered by their first line."""
    lines, sentences, words, tags, start, width = [], [], [], [], 0, None

    def end_sentence():
        sentences.append((words, tags))
        lines.append(start)

    for number, line in read_lines(path):
        fields = line.split()
        if fields and fields[0] == DOCSTART:
            continue
        if not fields:
            if words:
                end_sentence()
                words, tags = [], []
            continue
        if width is None:
            width = len(fields)
            if width < 2 or not -width <= tag_column < width or tag_column in (0, -width):
                raise DataFormatError(path, number, "a word and a tag column (tag_column="
                                      f"{tag_column})", line)
        if len(fields) != width:
            raise DataFormatError(path, number, f"{width} whitespace-separated columns, as on "
                                  "the file's first token line", line)
        if not words:
            start = number
        words.append(fields[0])
        tags.append(fields[tag_column])
    if words:
        end_sentence()
    normalised = iter(pipeline.normalise([w for ws, _ in sentences for w in ws]))
    for ws, ts in sentences:
        columns[0].append([next(normalised) for _ in ws])
        columns[1].append(ts)
    return Examples(path, tuple(c.take() for c in columns), np.array(lines, np.int64))


def load(folder: str, tag_column: int = -1, **options) -> Corpus:
    """The `tagged:` corpus in `folder` (options as in `data.text_corpus.CorpusOptions`)."""
    opts = CorpusOptions(**options)
    if opts.tokenizer != "whitespace":
        raise ValueError(f"tokenizer={opts.tokenizer!r} does not apply to a tagged corpus: its "
                         "columns are the tokens")
    files = split_files(folder, [".txt"], "tagged")
    info = {**opts.info(), "tag_column": tag_column}
    pipeline, columns = opts.pipeline(), (Column(), Column())
    examples = finish_splits({split: read_conll(paths[0], pipeline, tag_column, columns)
                              for split, paths in files.items()}, opts, "sentence", info)
    vocab, word_ids = opts.build_vocab(columns[0], examples[TRAIN].sides[0].values)
    tag_vocab, tag_ids = opts.build_vocab(
        columns[1], np.concatenate([ex.sides[1].values for ex in examples.values()]),
        specials=False)
    words, tags = encode(examples, 0, word_ids), encode(examples, 1, tag_ids)
    info.update(vocab_size=len(vocab), num_tags=len(tag_vocab))
    return Corpus(
        f"tagged:{folder}", tuple(examples), vocab,
        {"sentences": forms.sentences(words), "tokens": forms.tokens(words),
         "tagged": forms.tokens(words, {"tags": tags})}, info,
        {split: int(w.lengths.sum()) for split, w in words.items()},
        {split: len(w) for split, w in words.items()}, pos_vocab=tag_vocab)
