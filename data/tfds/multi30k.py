"""TFDS builder `multi30k`: Multi30k English–German sentence pairs (tokenized, lower-cased).

Features: a `Translation` of `en` and `de` (space-joined tokens of the `tok/` files). Splits
`train` 29,000 / `valid` 1,014 / `test` (test_2016_flickr) 1,000 / `test_2017_flickr` 1,000 /
`test_2017_mscoco` 461 / `test_2018_flickr` 1,071 pairs.

#### References
Elliott, Frank, Sima'an & Specia (2016), "Multi30K: Multilingual English-German Image
Descriptions", Workshop on Vision and Language.
"""
from __future__ import annotations

import tensorflow_datasets as tfds

from data import multi30k, readers
from data.tfds.sources import fetch

_URL = ("https://raw.githubusercontent.com/multi30k/dataset/"
        "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/")


class Multi30k(tfds.core.GeneratorBasedBuilder):
    """Multi30k task 1 (WMT16 multimodal translation), text only."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: a folder with tok/{split}.lc.norm.tok.{en,de} (as shared/data/multi30k); "
        "without one the files are downloaded from " + _URL)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.Translation(languages=multi30k.LANGUAGES),
            homepage="https://github.com/multi30k/dataset")

    def _split_generators(self, dl_manager):
        files = [multi30k.tok_file(s, lang) for s in multi30k.SPLITS for lang in multi30k.LANGUAGES]
        paths = fetch(dl_manager, {f: _URL + f for f in files})
        return {split: self._generate_examples({lang: paths[multi30k.tok_file(split, lang)]
                                                for lang in multi30k.LANGUAGES})
                for split in multi30k.SPLITS}

    def _generate_examples(self, paths):
        lines = {lang: readers.token_lines(path) for lang, path in paths.items()}
        if len({len(v) for v in lines.values()}) != 1:
            raise ValueError(f"unaligned files {paths}: line counts "
                             f"{ {lang: len(v) for lang, v in lines.items()} }")
        for i, pair in enumerate(zip(*lines.values())):
            yield i, {lang: " ".join(tokens) for lang, tokens in zip(lines, pair)}
