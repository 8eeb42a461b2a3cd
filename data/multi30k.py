"""Multi30k English–German (WMT16 multimodal task 1), the lower-cased tokenized `tok/` files.

Line i of `tok/{split}.lc.norm.tok.en` translates to line i of the `.de` file. Splits: `train`
(29,000 pairs), `valid` (`val`, 1,014), `test` (`test_2016_flickr`, 1,000, where BLEU is reported),
and the later test sets `test_2017_flickr`, `test_2017_mscoco`, `test_2018_flickr`. A translation
model scores p(y | x) = Π_t p(y_t | y_<t, x) of target y given source x.

Load options: `direction` (`"en-de"`, the default, or `"de-en"`) fixes `source_vocab` and
`target_vocab` (`vocab` is the target side's); `min_count` (1) for both vocabularies, built on
train. Forms: `parallel`, and `sentences` of one language (option `side`, default the target).
`references(split)` gives the tokenized target lines (BLEU is usually reported on these);
`references(split, raw=True)` the original cased text from `raw/{split}.{lang}.gz`.

#### References
Elliott, Frank, Sima'an & Specia (2016), "Multi30K: Multilingual English-German Image
Descriptions", Workshop on Vision and Language. Specia et al. (2016), "A Shared Task on Multimodal
Machine Translation and Crosslingual Image Description", WMT16.
"""
from __future__ import annotations

import functools
import os

from data import forms, readers
from data.corpus import Corpus
from data.errors import DataFormatError
from data.paths import corpus_dir
from data.pipeline import Sequences
from data.vocab import Vocabulary

FOLDER = "multi30k"
SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr",
          "test_2017_flickr": "test_2017_flickr", "test_2017_mscoco": "test_2017_mscoco",
          "test_2018_flickr": "test_2018_flickr"}
LANGUAGES = ("en", "de")
DIRECTIONS = ("en-de", "de-en")
SOURCE = "https://github.com/multi30k/dataset (data/task1/tok/ and data/task1/raw/)"


def tok_file(split: str, lang: str) -> str:
    """The tokenized file of a (normalised) split and language, relative to the corpus folder."""
    return f"tok/{SPLITS[split]}.lc.norm.tok.{lang}"


def raw_file(split: str, lang: str) -> str:
    """The raw (cased, untokenized) gzip file of a split and language."""
    return f"raw/{SPLITS[split]}.{lang}.gz"


def load(data_dir: str, direction: str = "en-de", min_count: int = 1) -> Corpus:
    """Multi30k under `data_dir/multi30k/`."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown multi30k direction {direction!r}; valid: "
                         f"{', '.join(DIRECTIONS)}")
    src, tgt = direction.split("-")
    folder = corpus_dir(data_dir, FOLDER, [tok_file(s, l) for s in SPLITS for l in LANGUAGES],
                        SOURCE)
    vocabs, sentences = _parse(folder, min_count)

    def side_sentences(split, batching, side: str = tgt, **options):
        if side not in LANGUAGES:
            raise ValueError(f"side must be one of {', '.join(LANGUAGES)}, got {side!r}")
        return by_side[side](split, batching, **options)

    def references(split: str, raw: bool) -> list[str]:
        if not raw:
            return [" ".join(line) for line in _read_pair(folder, split)[tgt]]
        raw_folder = corpus_dir(data_dir, FOLDER, [raw_file(split, tgt)], SOURCE)
        return readers.text_lines(os.path.join(raw_folder, raw_file(split, tgt)))

    by_side = {lang: forms.sentences(sentences[lang]) for lang in LANGUAGES}
    return Corpus(
        "multi30k", tuple(SPLITS), vocabs[tgt],
        {"parallel": forms.parallel(sentences[src], sentences[tgt]), "sentences": side_sentences},
        {"vocab_size": len(vocabs[tgt]), "source_vocab_size": len(vocabs[src]),
         "target_vocab_size": len(vocabs[tgt]), "direction": direction},
        {split: int(s.lengths.sum()) for split, s in sentences[tgt].items()},
        {split: len(s) for split, s in sentences[tgt].items()},
        source_vocab=vocabs[src], target_vocab=vocabs[tgt], references=references)


@functools.lru_cache(maxsize=None)
def _read_pair(folder: str, split: str) -> dict[str, list[list[str]]]:
    """The tokens of each line of a split, per language; the two files must align."""
    pair = {lang: readers.token_lines(os.path.join(folder, tok_file(split, lang)))
            for lang in LANGUAGES}
    (short, n_short), (long_, n_long) = sorted(((lang, len(lines)) for lang, lines in pair.items()),
                                              key=lambda item: item[1])
    if n_short != n_long:
        raise DataFormatError(os.path.join(folder, tok_file(split, short)), n_short + 1,
                              f"{n_long} lines, aligned with {tok_file(split, long_)}",
                              "<end of file>")
    return pair


@functools.lru_cache(maxsize=None)
def _parse(folder: str, min_count: int):
    """Per language: the vocabulary (built on train) and each split's sentences as ids."""
    pairs = {split: _read_pair(folder, split) for split in SPLITS}
    vocabs = {lang: Vocabulary.build(pairs["train"][lang], min_count) for lang in LANGUAGES}
    return vocabs, {lang: {split: Sequences.from_rows(vocabs[lang].encode(line)
                                                       for line in pair[lang])
                           for split, pair in pairs.items()}
                    for lang in LANGUAGES}
