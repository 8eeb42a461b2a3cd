"""TFDS builders built offline from the shared data (manual folder, no GCS, sockets blocked):
split sizes equal the README's counts and examples equal what the corpus loaders parse.

All four builders (both news20 configs) are built fully: together about 10 s on 2 cores."""
import os
import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data
from data import tfds as builders
from data.errors import CorpusNotFoundError

BUILDS = [
    (builders.Ptb, None, "ptb", {"train": 42068, "valid": 3370, "test": 3761}),
    (builders.News20, "nvdm", "20news", {"train": 11268, "test": 7505}),
    (builders.News20, "prodlda", "20news_prodlda", {"train": 11258, "test": 7487}),
    (builders.Conll2000, None, "conll2000", {"train": 8936, "valid": 1844, "test": 2012}),
    (builders.Multi30k, None, "multi30k", {"train": 29000, "valid": 1014, "test": 1000,
                                           "test_2017_flickr": 1000, "test_2017_mscoco": 461,
                                           "test_2018_flickr": 1071}),
]


@pytest.fixture(scope="module")
def built(data_dir, tmp_path_factory):
    """Every builder, built once into a temporary folder with the network refused."""
    out = tmp_path_factory.mktemp("tfds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield {(cls, config): build(cls, config, folder, data_dir, out)
               for cls, config, folder, _ in BUILDS}


def refuse(*args, **kwargs):
    raise AssertionError("a TFDS builder tried to reach the network")


def build(cls, config, folder, data_dir, out):
    builder = cls(data_dir=str(out), config=config) if config else cls(data_dir=str(out))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.path.join(data_dir, folder), try_download_gcs=False))
    return builder


@pytest.mark.parametrize("cls,config,folder,sizes", BUILDS,
                         ids=[f"{b[0].__name__}-{b[1]}" for b in BUILDS])
def test_offline_build_split_sizes(built, cls, config, folder, sizes):
    builder = built[cls, config]
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == sizes


def test_examples_match_corpus_loaders(built, data_dir):
    corpus = data.load("conll2000", data_dir=data_dir, lowercase=False)
    sentences = {tuple(corpus.vocab.decode(b["tokens"].numpy()[i, :n]))
                 for b in corpus.dataset("test", "tokens", 4096)
                 for i, n in enumerate(b["lengths"].numpy())}
    examples = built[builders.Conll2000, None].as_dataset(split="test").take(20)
    for example in tfds.as_numpy(examples):
        words = tuple(w.decode() for w in example["tokens"])
        assert tuple(w if w in corpus.vocab else "<unk>" for w in words) in sentences
        assert len(words) == len(example["pos"]) == len(example["chunks"])

    news = built[builders.News20, "nvdm"]
    assert len(news.info.metadata["vocabulary"]) == 2000
    (whole,) = news.as_dataset(split="test").ragged_batch(10000)  # one batch: the whole split
    assert whole["label"].shape[0] == 7505
    totals = np.bincount(whole["indices"].flat_values.numpy(),
                         weights=whole["counts"].flat_values.numpy(), minlength=2000)
    reference = sum(b["counts"].numpy().sum(0)
                    for b in data.load("news20", data_dir=data_dir).dataset("test", "bow", 4096))
    np.testing.assert_array_equal(totals, reference)


def test_incomplete_manual_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", refuse)
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "ptb.train.txt").write_text(" a b \n")
    with pytest.raises(CorpusNotFoundError, match="lacks ptb.valid.txt, ptb.test.txt"):
        build(builders.Ptb, None, "manual", str(tmp_path), tmp_path / "out")
