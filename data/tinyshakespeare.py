"""Tiny Shakespeare (char-rnn): `tinyshakespeare/input.txt`, a character-level LM corpus.

1,115,394 characters, 65 distinct. No official split: as nanoGPT's `shakespeare_char`, the
first 90% of the characters (⌊0.9·N⌋ = 1,003,854) are `train` and the rest (111,540) `valid`;
there is no `test`. The vocabulary is `<pad>`, `<unk>`, `<bos>`, `<eos>` and the 65 characters in
code-point order (69 ids). Metric: nats (or bits) per character, −(1/N) Σ log p(c_t | c_<t).
Forms: `stream`.

#### References
Karpathy (2015), "The Unreasonable Effectiveness of Recurrent Neural Networks" (char-rnn).
Karpathy, nanoGPT, `data/shakespeare_char/prepare.py` (the 90/10 split).
"""
from __future__ import annotations

import functools
import os

import numpy as np

from data import forms, readers
from data.corpus import Corpus
from data.paths import corpus_dir
from data.vocab import SPECIALS, Vocabulary

FOLDER = "tinyshakespeare"
FILE = "input.txt"
TRAIN_FRACTION = 0.9
SOURCE = "https://github.com/karpathy/char-rnn (data/tinyshakespeare/input.txt)"


def load(data_dir: str) -> Corpus:
    """Tiny Shakespeare under `data_dir/tinyshakespeare/`."""
    vocab, streams = _parse(corpus_dir(data_dir, FOLDER, [FILE], SOURCE))
    return Corpus("tinyshakespeare", tuple(streams), vocab, {"stream": forms.stream(streams)},
                  {"vocab_size": len(vocab)},
                  {split: len(s) for split, s in streams.items()},
                  {split: 1 for split in streams})


@functools.lru_cache(maxsize=None)
def _parse(folder: str) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """The character vocabulary and the two splits' id streams; cached per process."""
    text = readers.read_text(os.path.join(folder, FILE))
    vocab = Vocabulary([*SPECIALS, *sorted(set(text))])
    ids = np.array(vocab.encode(text), np.int32)
    cut = int(len(ids) * TRAIN_FRACTION)
    return vocab, {"train": ids[:cut], "valid": ids[cut:]}
