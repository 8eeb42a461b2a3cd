"""TFDS builder `conll2000`: CoNLL-2000 chunking sentences with POS and chunk tags.

Features: `tokens`, `pos`, `chunks` (string tensors [n] of one sentence). Splits `train` 8,936 /
`valid` 1,844 (UKPLab's unofficial `dev.txt`) / `test` 2,012 sentences.

#### References
Tjong Kim Sang & Buchholz (2000), "Introduction to the CoNLL-2000 Shared Task: Chunking".
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from data import conll2000, readers
from data.tfds.sources import fetch

_URLS = {
    "train.txt": "https://www.clips.uantwerpen.be/conll2000/chunking/train.txt.gz",
    "test.txt": "https://www.clips.uantwerpen.be/conll2000/chunking/test.txt.gz",
    "dev.txt": "https://raw.githubusercontent.com/UKPLab/emnlp2017-bilstm-cnn-crf/"
               "b709f580f11c33c0f9951a0afdc3e71a252c93fd/data/conll2000_chunking/dev.txt",
}


class Conll2000(tfds.core.GeneratorBasedBuilder):
    """CoNLL-2000: WSJ sections 15–18 (train) and 20 (test) with gold POS and chunk tags."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: a folder with train.txt, dev.txt, test.txt (as shared/data/conll2000); without "
        "one train/test are downloaded from CLiPS and dev from UKPLab's repository.")

    def _info(self) -> tfds.core.DatasetInfo:
        strings = tfds.features.Tensor(shape=(None,), dtype=np.str_)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"tokens": strings, "pos": strings,
                                                 "chunks": strings}),
            homepage="https://www.clips.uantwerpen.be/conll2000/chunking/")

    def _split_generators(self, dl_manager):
        paths = fetch(dl_manager, _URLS)
        return {split: self._generate_examples(paths[f]) for split, f in conll2000.FILES.items()}

    def _generate_examples(self, path):
        for i, (words, pos, chunks) in enumerate(readers.conll_sentences(path, conll2000.COLUMNS)):
            yield i, {"tokens": words, "pos": pos, "chunks": chunks}
