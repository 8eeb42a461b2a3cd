"""`tfds:NAME[:FIELD]`: the project's PTB builder prepared offline (network refused) from a tiny
manual folder, read back as a corpus equal to `text:` on the same lines: vocabulary, counts and
batches; a dataset not prepared, and a field that is not text, are named in the error."""
import socket

import pytest
import tensorflow_datasets as tfds

import data
from data import tfds as builders
from data.errors import CorpusNotFoundError

LINES = {"train": ["the cat sat", "a dog <unk> ran", "", "the cat ran on the mat"],
         "valid": ["the dog sat"], "test": ["a cat", "mat on the"]}


def refuse(*args, **kwargs):
    raise AssertionError("the test tried to reach the network")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    manual, out = tmp_path_factory.mktemp("manual"), tmp_path_factory.mktemp("tfds")
    for split, lines in LINES.items():
        (manual / f"ptb.{split}.txt").write_text("".join(line + "\n" for line in lines))
    text = tmp_path_factory.mktemp("text")
    for split, lines in LINES.items():
        (text / f"{split}.txt").write_text("".join(line + "\n" for line in lines))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        builders.Ptb(data_dir=str(out)).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual),
                                                         try_download_gcs=False))
    return str(out), str(text)


def test_tfds_corpus_equals_the_text_corpus_of_the_same_lines(prepared):
    out, text = prepared
    from_tfds = data.load("tfds:ptb:text", tfds_data_dir=out, lowercase=True)
    from_text = data.load(f"text:{text}", lowercase=True)
    assert from_tfds.splits == from_text.splits == ("train", "valid", "test")
    assert from_tfds.vocab.tokens == from_text.vocab.tokens
    assert from_tfds.info["tfds"]["field"] == "text"
    assert from_tfds.info["text_pipeline"] == from_text.info["text_pipeline"]
    for split in from_text.splits:
        assert from_tfds.num_tokens(split) == from_text.num_tokens(split)
        # TFDS stores examples in its own order: compare the split's sentences as a multiset.
        rows = [sorted(tuple(r[:n]) for b in c.dataset(split, "tokens", 8)
                       for r, n in zip(b["tokens"].numpy(), b["lengths"].numpy()))
                for c in (from_tfds, from_text)]
        assert rows[0] == rows[1]
    # The field may be left out (ptb has one text feature).
    assert data.load("tfds:ptb", tfds_data_dir=out).num_tokens("train") == \
        from_text.num_tokens("train")


def test_tfds_errors(prepared, tmp_path):
    out, _ = prepared
    with pytest.raises(CorpusNotFoundError, match=r"tfds:ptb is not prepared in .*--tfds_data_dir"):
        data.load("tfds:ptb", tfds_data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"feature 'words' is not text; write tfds:ptb:FIELD with "
                                         "FIELD one of text"):
        data.load("tfds:ptb:words", tfds_data_dir=out)
    with pytest.raises(CorpusNotFoundError, match="no such TFDS dataset"):
        data.load("tfds:no_such_dataset_xyz", tfds_data_dir=out)
