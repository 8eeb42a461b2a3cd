"""tflv's data: every corpus as `tf.data` pipelines of dict batches, and TFDS builders.

    corpus = data.load("ptb")                       # or data.DATASETS["ptb"](data_dir)
    train = corpus.dataset("train", "stream", 20, seq_len=35)

`load(name, data_dir=None, **options)` finds the corpus under the data root (`data.paths`) and
returns a `Corpus` (parsing is cached per process). Names: `ptb`, `news20` (`variant="nvdm"` or
`"prodlda"`), `conll2000`, `multi30k`, `tinyshakespeare`, `synthetic_hmm` (generated),
`e2e` (records, sentences and copy spans; `data.e2e`). The TFDS
builders live in `data.tfds` (imported on demand: TFDS is slow to import).

Your own corpus is named by a prefix and a folder (`GENERIC`): `text:DIR` (one sentence or
document per line, `data.text_corpus`), `parallel:DIR` (line-aligned `.src` / `.tgt` files,
`data.parallel_corpus`), `tagged:DIR` (CoNLL columns, `data.tagged_corpus`), and
`tfds:NAME[/CONFIG][:FIELD]` (a text dataset prepared in a local TFDS data dir, read as `text:`,
`data.tfds_corpus`); DIR is a path as given (relative to the working directory), and the
options are the tokenizer, vocabulary and split options of `data.text_corpus.CorpusOptions`,
e.g. `data.load("text:my_corpus", lowercase=True, vocab_size=10000)`.

#### References
Kim, Wiseman & Rush (2018), "A Tutorial on Deep Latent Variable Models of Natural Language",
arXiv:1812.06834.
"""
from __future__ import annotations

from collections.abc import Callable

from data import (conll2000, e2e, multi30k, news20, parallel_corpus, ptb, synthetic_hmm,
                  tagged_corpus, text_corpus, text_stream, tfds_corpus,
                  tinyshakespeare)
from data.corpus import Corpus
from data.errors import CorpusNotFoundError, DataFormatError
from data.paths import resolve_data_dir
from data.vocab import Vocabulary

DATASETS: dict[str, Callable[..., Corpus]] = {
    "ptb": ptb.load,
    "news20": news20.load,
    "conll2000": conll2000.load,
    "multi30k": multi30k.load,
    "tinyshakespeare": tinyshakespeare.load,
    "synthetic_hmm": synthetic_hmm.load,
    "e2e": e2e.load,
}
# Corpora in a user's folder: `PREFIX:DIR`, loaded by `GENERIC[PREFIX](DIR, **options)`.
GENERIC: dict[str, Callable[..., Corpus]] = {
    "text": text_stream.load,
    "parallel": parallel_corpus.load,
    "tagged": tagged_corpus.load,
    "tfds": tfds_corpus.load,
}
GENERIC_FORMS: dict[str, tuple[str, ...]] = {
    "text": text_corpus.FORMS, "parallel": parallel_corpus.FORMS, "tagged": tagged_corpus.FORMS,
    "tfds": text_corpus.FORMS}


def split_name(name: str) -> tuple[str, str | None]:
    """`("text", "DIR")` for `"text:DIR"` (`("tfds", "NAME:FIELD")` for `"tfds:NAME:FIELD"`);
    `(name, None)` for a bundled corpus' name."""
    prefix, sep, folder = name.partition(":")
    if sep and prefix in GENERIC:
        if not folder:
            raise ValueError(f"dataset {name!r} names no folder: write {prefix}:"
                             + ("NAME[/CONFIG][:FIELD]" if prefix == "tfds" else "DIR"))
        return prefix, folder
    return name, None


def load(name: str, data_dir: str | None = None, **options) -> Corpus:
    """The corpus `name` from the data root `data_dir` (see `data.paths.resolve_data_dir`), or
    the generic corpus `PREFIX:DIR` from the folder DIR (`data_dir` is not used then).

    Raises:
      ValueError: for an unknown name (the message lists the valid ones).
      CorpusNotFoundError: when the corpus' files are not under the data root (or in DIR).
    """
    prefix, folder = split_name(name)
    if folder is not None:
        return GENERIC[prefix](folder, **options)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}, or "
                         + ", ".join(f"{p}:DIR" for p in GENERIC if p != "tfds")
                         + ", tfds:NAME[/CONFIG][:FIELD]")
    return DATASETS[name](resolve_data_dir(data_dir), **options)


__all__ = ["DATASETS", "GENERIC", "GENERIC_FORMS", "Corpus", "CorpusNotFoundError",
           "DataFormatError", "Vocabulary", "load", "split_name"]
