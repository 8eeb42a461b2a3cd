"""File parsers on small files written to tmp_path: correct parses, and every malformed line
raising `DataFormatError` with file, line number and what was expected."""
import gzip

import numpy as np
import pytest

import data
from data import readers, tinyshakespeare
from data.errors import DataFormatError

COLUMNS = ("word", "POS", "chunk")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_feat_documents(tmp_path):
    path = write(tmp_path / "train.feat", "3 4:2 1:1\n1 2:5 \n2 \n")
    docs = readers.feat_documents(path, vocab_size=4, num_labels=3)
    assert docs.labels.tolist() == [2, 0]  # the empty third document is skipped
    assert docs.lengths.tolist() == [2, 1]
    assert docs.index_values.tolist() == [3, 0, 1]  # 1-based → 0-based
    assert docs.counts.tolist() == [2, 1, 5]


@pytest.mark.parametrize("line,what,got", [
    ("1 12:x", "idx:count with integer idx and count", "'12:x'"),
    ("1 12", "idx:count with integer idx and count", "'12'"),
    ("a 1:2", "an integer label first", "'a'"),
    ("21 1:2", "a label in 1..20", "'21'"),
    ("1 1:2 5001:1", "idx:count with 1 <= idx <= 5000 and count >= 1", "'5001:1'"),
    ("1 0:2", "idx:count with 1 <= idx <= 5000 and count >= 1", "'0:2'"),
])
def test_feat_errors(tmp_path, line, what, got):
    path = write(tmp_path / "train.feat", f"1 1:1\n{line}\n")
    with pytest.raises(DataFormatError) as info:
        readers.feat_documents(path, vocab_size=5000, num_labels=20)
    assert str(info.value) == f"{path}:2: expected {what}, got {got}"


def test_vocab_words(tmp_path):
    assert readers.vocab_words(write(tmp_path / "v", "the 10\nof 3\n")) == ["the", "of"]
    with pytest.raises(DataFormatError, match=r"v2:2: expected 'word count' with an integer"):
        readers.vocab_words(write(tmp_path / "v2", "the 10\nof\n"))


def test_conll(tmp_path):
    path = write(tmp_path / "train.txt", "He PRP B-NP\nran VBD B-VP\n\n\nOk UH O\n")
    assert readers.conll_sentences(path, COLUMNS) == [
        [["He", "ran"], ["PRP", "VBD"], ["B-NP", "B-VP"]], [["Ok"], ["UH"], ["O"]]]
    bad = write(tmp_path / "dev.txt", "He PRP B-NP\n\nran VBD\n")
    with pytest.raises(DataFormatError) as info:
        readers.conll_sentences(bad, COLUMNS)
    assert str(info.value) == (f"{bad}:3: expected 3 space-separated columns: word POS chunk, "
                               "got 'ran VBD'")


def test_token_lines_gzip(tmp_path):
    with gzip.open(tmp_path / "x.gz", "wt", encoding="utf-8") as f:
        f.write("A dog .\nZwei Männer\n")
    assert readers.token_lines(tmp_path / "x.gz") == [["A", "dog", "."], ["Zwei", "Männer"]]


def test_news20_loader_on_small_files(tmp_path):
    folder = tmp_path / "20news"
    write(folder / "vocab.new", "a 3\nb 2\nc 1\n")
    write(folder / "train.feat", "2 1:2 3:1\n20 2:2\n1 1:1\n")
    write(folder / "test.feat", "5 3:4 1:1\n")
    corpus = data.load("news20", data_dir=str(tmp_path))
    batches = list(corpus.dataset("train", "bow", 2))
    counts = np.concatenate([b["counts"].numpy() for b in batches])
    np.testing.assert_array_equal(counts, [[2, 0, 1], [0, 2, 0], [1, 0, 0]])
    assert np.concatenate([b["labels"].numpy() for b in batches]).tolist() == [1, 19, 0]
    assert np.concatenate([b["lengths"].numpy() for b in batches]).tolist() == [3, 2, 1]
    assert corpus.num_tokens("train") == 6 and corpus.num_examples("test") == 1


def test_malformed_corpora_through_load(tmp_path):
    write(tmp_path / "conll2000" / "train.txt", "a DT B-NP\n\n")
    write(tmp_path / "conll2000" / "dev.txt", "a DT B-NP\n")
    write(tmp_path / "conll2000" / "test.txt", "a DT B-NP\nb NN\n")
    with pytest.raises(DataFormatError, match=r"test.txt:2: expected 3 space-separated"):
        data.load("conll2000", data_dir=str(tmp_path))
    for split in ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco",
                  "test_2018_flickr"):
        write(tmp_path / "multi30k" / "tok" / f"{split}.lc.norm.tok.en", "a b\nc\n")
        write(tmp_path / "multi30k" / "tok" / f"{split}.lc.norm.tok.de",
              "x\n" if split == "val" else "x\ny\n")
    with pytest.raises(DataFormatError, match=r"val.lc.norm.tok.de:2: expected 2 lines, aligned "
                                              r"with tok/val.lc.norm.tok.en"):
        data.load("multi30k", data_dir=str(tmp_path))


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    plain = tmp_path / "ptb.train.txt"
    plain.write_bytes(b"a b\nc \xff d\n")
    with pytest.raises(DataFormatError, match=r"ptb.train.txt:2: expected UTF-8 text \(byte 2 "):
        readers.token_lines(plain)
    conll = tmp_path / "dev.txt"
    conll.write_bytes(b"He PRP B-NP\n\nr\xe9n VBD B-VP\n")
    with pytest.raises(DataFormatError, match=r"dev.txt:3: expected UTF-8 text"):
        readers.conll_sentences(conll, COLUMNS)
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(b"ok\n\x80\n")
    with pytest.raises(DataFormatError, match=r"x.gz:2: expected UTF-8 text"):
        readers.text_lines(tmp_path / "x.gz")


def test_a_character_corpus_names_the_line_of_its_bad_bytes(tmp_path):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_bytes(b"First Citizen:\r\nBefore we proceed\nany fur\xffther\n")
    with pytest.raises(DataFormatError, match=r"input.txt:3: expected UTF-8 text \(byte 7 .*'any fur"):
        tinyshakespeare.load(str(tmp_path))
    good = folder / "good.txt"
    good.write_bytes("a\r\nb\n\u00e9".encode())
    assert readers.read_text(good) == "a\r\nb\n\u00e9"  # line ends kept, as the corpus counts them


def test_count_beyond_int64_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.feat", "1 1:1\n2 2:3 3:99999999999999999999\n")
    with pytest.raises(DataFormatError) as info:
        readers.feat_documents(path, vocab_size=5, num_labels=3)
    assert str(info.value) == (f"{path}:2: expected idx:count with idx and count <= "
                               f"{np.iinfo(np.int64).max}, got '3:99999999999999999999'")


def test_duplicate_vocabulary_word_names_both_lines(tmp_path):
    path = write(tmp_path / "vocab.new", "the 10\nof 3\nthe 2\n")
    with pytest.raises(DataFormatError) as info:
        readers.vocab_words(path)
    assert str(info.value) == (f"{path}:3: expected a word not listed before (line 1 has "
                               "'the'), got 'the 2'")


@pytest.mark.parametrize("corpus, files, empty", [
    ("ptb", {"ptb.train.txt": "a b\n", "ptb.valid.txt": "a\n", "ptb.test.txt": ""},
     "ptb.test.txt"),
    ("conll2000", {"train.txt": "a DT B-NP\n", "dev.txt": "\n\n", "test.txt": "a DT B-NP\n"},
     "dev.txt"),
    ("news20", {"vocab.new": "a 1\n", "train.feat": "1 1:2\n", "test.feat": "1 \n"},
     "test.feat"),
])
def test_empty_split_is_an_error_naming_the_file(tmp_path, corpus, files, empty):
    # Before, an empty PTB test file was scored as {"nll": 0.0, "ppl": 1.0} and an empty CoNLL
    # dev file failed only after training, naming no file.
    folder = {"news20": "20news"}.get(corpus, corpus)
    for name, text in files.items():
        write(tmp_path / folder / name, text)
    with pytest.raises(DataFormatError) as info:
        data.load(corpus, data_dir=str(tmp_path))
    assert info.value.file == str(tmp_path / folder / empty) and info.value.line == 1
    assert "(the file has none)" in str(info.value)
