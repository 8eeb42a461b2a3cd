"""Your own translation corpus: line-aligned files as a `Corpus` (`data.load("parallel:DIR")`).

`DIR/train.src` and `DIR/train.tgt` (required), `valid.{src,tgt}`, `test.{src,tgt}` (optional):
line i of `X.tgt` translates line i of `X.src`. Both sides go through the same
`data.tokenize.TextPipeline` and get their own vocabulary (built on train, the options of
`data.text_corpus`); `vocab` is the target side's. A translation model scores
p(y | x) = Π_t p(y_t | y_<t, x).

Forms: `parallel`, and `sentences` of one side (option `side`, `"target"` by default, or
`"source"`). A pair with a blank side is skipped (counted in `info["blank_lines"]`, keyed by the
`.src` file); with `max_line_tokens` a pair is dropped when either side is longer. Files of
different lengths raise `DataFormatError` at the first line the shorter one lacks.
`references(split)` gives the target sides as tokenized text, `references(split, raw=True)` the
target lines as written. `num_tokens(split)` counts target words (as Multi30k's).

#### References
Bahdanau, Cho & Bengio (2015), "Neural Machine Translation by Jointly Learning to Align and
Translate", ICLR.
"""
from __future__ import annotations

import itertools
import os

import numpy as np

from data import forms
from data.corpus import Corpus
from data.errors import DataFormatError
from data.text_corpus import (TRAIN, Column, CorpusOptions, Examples, encode, finish_splits,
                              split_files)
from data.tokenize import TextPipeline, batches, read_lines

FORMS = ("parallel", "sentences")
SIDES = ("source", "target")
_END = (None, None)


def read_pairs(source_path: str, target_path: str, pipeline: TextPipeline,
               columns: tuple[Column, Column], info: dict) -> Examples:
    """The aligned, non-blank line pairs of two files as two-column examples."""
    lines, blank = [], 0
    aligned = itertools.zip_longest(read_lines(source_path), read_lines(target_path),
                                    fillvalue=_END)
    for chunk in batches(aligned, 4096):
        for (n_src, _), (n_tgt, _) in chunk:
            if n_src is None or n_tgt is None:
                short, long_, number = ((source_path, target_path, n_tgt) if n_src is None
                                        else (target_path, source_path, n_src))
                total = sum(1 for _ in read_lines(long_))
                raise DataFormatError(short, number, f"{total} lines, aligned with {long_}",
                                      "end of file")
        sides = [pipeline.tokens_of([pair[k][1] for pair in chunk]) for k in (0, 1)]
        for ((n_src, _), _), pair in zip(chunk, zip(*sides)):
            if pair[0] and pair[1]:
                for column, tokens in zip(columns, pair):
                    column.append(tokens)
                lines.append(n_src)
            else:
                blank += 1
    info.setdefault("blank_lines", {})[os.path.basename(source_path)] = blank
    return Examples(source_path, tuple(c.take() for c in columns), np.array(lines, np.int64))


def load(folder: str, **options) -> Corpus:
    """The `parallel:` corpus in `folder` (options as in `data.text_corpus.CorpusOptions`)."""
    opts = CorpusOptions(**options)
    files = split_files(folder, [".src", ".tgt"], "parallel")
    info = opts.info()
    pipeline, columns = opts.pipeline(), (Column(), Column())
    examples = finish_splits({split: read_pairs(*paths, pipeline, columns, info)
                              for split, paths in files.items()}, opts, "line pair", info)
    built = [opts.build_vocab(columns[side], examples[TRAIN].sides[side].values)
             for side in (0, 1)]
    vocabs = [vocab for vocab, _ in built]
    source, target = (encode(examples, side, built[side][1]) for side in (0, 1))
    by_side = {"source": forms.sentences(source), "target": forms.sentences(target)}
    target_tokens = columns[1].tokens

    def side_sentences(split, batching, side: str = "target", **form_options):
        if side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
        return by_side[side](split, batching, **form_options)

    def references(split: str, raw: bool) -> list[str]:
        ex = examples[split]
        if not raw:
            return [" ".join(target_tokens[i] for i in row) for row in ex.sides[1].rows()]
        wanted = set(ex.lines.tolist())
        text = {n: line for n, line in read_lines(ex.path[:-len(".src")] + ".tgt")
                if n in wanted}
        return [text[n] for n in ex.lines.tolist()]

    info.update(vocab_size=len(vocabs[1]), source_vocab_size=len(vocabs[0]),
                target_vocab_size=len(vocabs[1]))
    return Corpus(
        f"parallel:{folder}", tuple(examples), vocabs[1],
        {"parallel": forms.parallel(source, target), "sentences": side_sentences}, info,
        {split: int(s.lengths.sum()) for split, s in target.items()},
        {split: len(s) for split, s in target.items()},
        source_vocab=vocabs[0], target_vocab=vocabs[1], references=references)
