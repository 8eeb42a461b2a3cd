"""tflv's data: every corpus as `tf.data` pipelines of dict batches, and TFDS builders.

    corpus = data.load("ptb")                       # or data.DATASETS["ptb"](data_dir)
    train = corpus.dataset("train", "stream", 20, seq_len=35)

`load(name, data_dir=None, **options)` finds the corpus under the data root (`data.paths`) and
returns a `Corpus` (parsing is cached per process). Names: `ptb`, `news20` (`variant="nvdm"` or
`"prodlda"`), `conll2000`, `multi30k`, `tinyshakespeare`, `synthetic_hmm` (generated),
`e2e` (records, sentences and copy spans; `data.e2e`). The TFDS
builders live in `data.tfds` (imported on demand: TFDS is slow to import).

#### References
Kim, Wiseman & Rush (2018), "A Tutorial on Deep Latent Variable Models of Natural Language",
arXiv:1812.06834.
"""
from __future__ import annotations

from collections.abc import Callable

from data import conll2000, multi30k, news20, ptb, synthetic_hmm, tinyshakespeare
from data import e2e
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


def load(name: str, data_dir: str | None = None, **options) -> Corpus:
    """The corpus `name` from the data root `data_dir` (see `data.paths.resolve_data_dir`).

    Raises:
      ValueError: for an unknown name (the message lists the valid ones).
      CorpusNotFoundError: when the corpus' files are not under the data root.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name](resolve_data_dir(data_dir), **options)


__all__ = ["DATASETS", "Corpus", "CorpusNotFoundError", "DataFormatError", "Vocabulary", "load"]
