"""CoNLL-2000 chunking data: WSJ sentences with gold POS and IOB chunk tags.

Files `conll2000/{train,dev,test}.txt` (one `word POS chunk` line per token, a blank line after
each sentence) become the splits `train`, `valid` (UKPLab's unofficial `dev.txt`) and `test`.
Train: 8,936 sentences, 211,727 tokens, 44 POS tags; test: 2,012 / 47,377. For unsupervised POS
induction an HMM p(x, z) = p(z_1) Π p(z_t | z_{t-1}) Π p(x_t | z_t) is fit to the words x and its
states z are scored against the POS tags (many-to-one accuracy).

Load options: `lowercase` (True), and `min_count` / `max_size` of the word vocabulary (built on
train). The tag sets (`pos_vocab`, `chunk_vocab`) have no reserved ids and cover all splits (test
has `I-LST`, absent from train); `info["num_tags"]` is the number of POS tags (44).
Forms: `sentences`, `tokens`, `tagged` (`tags` = POS, `chunks` = chunk tags).

#### References
Tjong Kim Sang & Buchholz (2000), "Introduction to the CoNLL-2000 Shared Task: Chunking".
Johnson (2007), "Why Doesn't EM Find Good HMM POS-Taggers?", EMNLP (many-to-one accuracy).
"""
from __future__ import annotations

import functools
import os

from data import forms, readers
from data.corpus import Corpus
from data.paths import corpus_dir
from data.pipeline import Sequences
from data.vocab import Vocabulary

FOLDER = "conll2000"
FILES = {"train": "train.txt", "valid": "dev.txt", "test": "test.txt"}
COLUMNS = ("word", "POS", "chunk")
SOURCE = ("https://www.clips.uantwerpen.be/conll2000/chunking/ (train.txt.gz, test.txt.gz); "
          "dev.txt from https://github.com/UKPLab/emnlp2017-bilstm-cnn-crf")


def load(data_dir: str, lowercase: bool = True, min_count: int = 1,
         max_size: int | None = None) -> Corpus:
    """CoNLL-2000 under `data_dir/conll2000/`."""
    folder = corpus_dir(data_dir, FOLDER, FILES.values(), SOURCE)
    vocab, pos_vocab, chunk_vocab, words, pos, chunks = _parse(folder, lowercase, min_count,
                                                               max_size)
    return Corpus(
        "conll2000", tuple(FILES), vocab,
        {"sentences": forms.sentences(words), "tokens": forms.tokens(words),
         "tagged": forms.tokens(words, {"tags": pos, "chunks": chunks})},
        {"vocab_size": len(vocab), "num_tags": len(pos_vocab), "num_chunks": len(chunk_vocab),
         # the words as the loader read them, which serving reads text by (tflv.export)
         "text_pipeline": {"tokenizer": "whitespace", "lowercase": lowercase,
                           "unicode_form": None}},
        {split: int(w.lengths.sum()) for split, w in words.items()},
        {split: len(w) for split, w in words.items()},
        pos_vocab=pos_vocab, chunk_vocab=chunk_vocab)


def read_split(folder: str, split: str) -> list[list[list[str]]]:
    """The sentences of one split file: `[words, pos_tags, chunk_tags]` each."""
    return readers.conll_sentences(os.path.join(folder, FILES[split]), COLUMNS)


@functools.lru_cache(maxsize=None)
def _parse(folder: str, lowercase: bool, min_count: int, max_size: int | None):
    """Vocabularies and per-split id `Sequences` of words, POS and chunk tags; cached."""
    sentences = {split: read_split(folder, split) for split in FILES}
    if lowercase:
        sentences = {split: [[[w.lower() for w in s[0]], s[1], s[2]] for s in ss]
                     for split, ss in sentences.items()}
    vocab = Vocabulary.build((s[0] for s in sentences["train"]), min_count, max_size)
    every = [s for ss in sentences.values() for s in ss]
    tag_vocabs = [Vocabulary.build((s[c] for s in every), specials=False) for c in (1, 2)]
    columns = [{split: Sequences.from_rows(v.encode(s[c]) for s in ss)
                for split, ss in sentences.items()}
               for c, v in enumerate([vocab, *tag_vocabs])]
    return (vocab, *tag_vocabs, *columns)
