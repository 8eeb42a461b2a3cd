"""TFDS builder `news20`: 20 Newsgroups bags of words, configs `nvdm` and `prodlda`.

Features: `label` (0-based class; `prodlda` has the single placeholder class), `indices` (0-based
word ids, `idx - 1` of the `.feat` file) and `counts` (int32 [n], aligned); the word list is stored
in `info.metadata["vocabulary"]`. Documents without tokens are skipped. Splits: `nvdm` train
11,268 / test 7,505 documents; `prodlda` train 11,258 / test 7,487.

#### References
Miao, Yu & Blunsom (2016), "Neural Variational Inference for Text Processing", ICML.
Srivastava & Sutton (2017), "Autoencoding Variational Inference for Topic Models", ICLR.
Burkhardt & Kramer (2019), "Decoupling Sparsity and Smoothness in the Dirichlet Variational
Autoencoder Topic Model", JMLR 20.
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from data import news20, readers
from data.tfds.sources import fetch

_URLS = {
    "nvdm": "https://raw.githubusercontent.com/ysmiao/nvdm/"
            "19bc3d630bc0bace13555e2515de082771827a76/data/20news/",
    "prodlda": "https://raw.githubusercontent.com/sophieburkhardt/dirichlet-vae-topic-models/"
               "70091d4f1df37c7a7eb2995fbbffba36caed46aa/data/20news/",
}


class News20(tfds.core.GeneratorBasedBuilder):
    """20 Newsgroups in NVDM's bag-of-words format (2,000 or 1,995 words)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="nvdm", description="Miao's 20news, 2,000 words, labels."),
        tfds.core.BuilderConfig(name="prodlda", description="ProdLDA's 1,995 words, no labels."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: a folder with train.feat, test.feat, vocab.new (as shared/data/20news or "
        "shared/data/20news_prodlda); without one the files are downloaded from GitHub.")

    def _info(self) -> tfds.core.DatasetInfo:
        variant = news20.VARIANTS[self.builder_config.name]
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "label": tfds.features.ClassLabel(num_classes=variant.num_labels),
                "indices": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                "counts": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            }),
            metadata=tfds.core.MetadataDict(),
            homepage="https://github.com/ysmiao/nvdm")

    def _split_generators(self, dl_manager):
        url = _URLS[self.builder_config.name]
        files = [*news20.FILES.values(), news20.VOCAB_FILE]
        paths = fetch(dl_manager, {f: url + f for f in files})
        words = readers.vocab_words(paths[news20.VOCAB_FILE])
        self.info.metadata["vocabulary"] = words
        return {split: self._generate_examples(paths[f], len(words))
                for split, f in news20.FILES.items()}

    def _generate_examples(self, path, vocab_size: int):
        num_labels = news20.VARIANTS[self.builder_config.name].num_labels
        docs = readers.feat_documents(path, vocab_size, num_labels)
        ends = np.cumsum(docs.lengths)
        for i, (label, end, n) in enumerate(zip(docs.labels, ends, docs.lengths)):
            yield i, {"label": int(label),
                      "indices": docs.index_values[end - n:end].astype(np.int32),
                      "counts": docs.counts[end - n:end].astype(np.int32)}
