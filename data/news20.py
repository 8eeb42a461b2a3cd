"""20 Newsgroups as bags of words, in NVDM's `.feat` format: two variants.

`variant="nvdm"` (folder `20news/`): Miao's 2,000-word version with the 20 newsgroup labels
(1..20 in the files, 0..19 here); train 11,268 documents / 1,128,881 tokens, test 7,505 / 720,898.
`variant="prodlda"` (folder `20news_prodlda/`): the 1,995-word ProdLDA vocabulary (index 1 is the
never-used `_eos_`), placeholder label 1 (→ 0); its empty last document is skipped; train 11,258 /
991,493, test 7,487 / 629,312. A document d is the count vector n_d ∈ ℕ^V and its length
L_d = Σ_v n_dv; the topic-model perplexity is exp((1/D) Σ_d −log p(n_d) / L_d).

The vocabulary has no reserved ids: column v of `counts` is line v+1 of `vocab.new`.
Forms: `bow`. Splits: `train`, `test`.

#### References
Miao, Yu & Blunsom (2016), "Neural Variational Inference for Text Processing", ICML.
Srivastava & Sutton (2017), "Autoencoding Variational Inference for Topic Models", ICLR.
Burkhardt & Kramer (2019), "Decoupling Sparsity and Smoothness in the Dirichlet Variational
Autoencoder Topic Model", JMLR 20.
"""
from __future__ import annotations

import functools
import os
import typing

from data import forms, readers
from data.corpus import Corpus
from data.paths import corpus_dir
from data.pipeline import Sequences
from data.vocab import Vocabulary


class Variant(typing.NamedTuple):
    """A variant's folder under the data root, its number of labels and its public source."""
    folder: str
    num_labels: int
    source: str


VARIANTS = {
    "nvdm": Variant("20news", 20, "https://github.com/ysmiao/nvdm (data/20news/)"),
    "prodlda": Variant("20news_prodlda", 1, "https://github.com/sophieburkhardt/"
                       "dirichlet-vae-topic-models (data/20news/)"),
}
FILES = {"train": "train.feat", "test": "test.feat"}
VOCAB_FILE = "vocab.new"


def load(data_dir: str, variant: str = "nvdm") -> Corpus:
    """20 Newsgroups under `data_dir/20news/` (`variant="nvdm"`) or `data_dir/20news_prodlda/`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown news20 variant {variant!r}; valid: {', '.join(VARIANTS)}")
    spec = VARIANTS[variant]
    folder = corpus_dir(data_dir, spec.folder, [*FILES.values(), VOCAB_FILE], spec.source)
    vocab, docs = _parse(folder, spec.num_labels)
    documents = {split: (Sequences(d.index_values, d.lengths), d.counts, d.labels)
                 for split, d in docs.items()}
    return Corpus(
        "news20", tuple(FILES), vocab, {"bow": forms.bow(documents, len(vocab))},
        {"vocab_size": len(vocab), "num_labels": spec.num_labels, "variant": variant},
        {split: int(d.counts.sum()) for split, d in docs.items()},
        {split: len(d) for split, d in docs.items()})


@functools.lru_cache(maxsize=None)
def _parse(folder: str, num_labels: int) -> tuple[Vocabulary, dict[str, readers.BagsOfWords]]:
    """The word list and each split's documents; cached per process."""
    vocab = Vocabulary(readers.vocab_words(os.path.join(folder, VOCAB_FILE)), specials=False)
    return vocab, {split: readers.feat_documents(os.path.join(folder, f), len(vocab), num_labels)
                   for split, f in FILES.items()}
