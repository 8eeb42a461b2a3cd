"""Vocabulary: reserved ids, deterministic build (checked against a brute-force count), min_count /
max_size, file round trip with escapes, and the in-graph lookup table (eager, traced with an unknown
length, and restored from a SavedModel)."""
import collections
import itertools

import numpy as np
import pytest
import tensorflow as tf

from data.errors import DataFormatError
from data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocabulary

SENTENCES = [["b", "a", "c", "a"], ["d", "b", "a"], ["e", "c", "b", "f"]]


def brute_force(token_lists, min_count, max_size):
    counts = collections.Counter(itertools.chain.from_iterable(token_lists))
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    kept = [t for t in ranked if counts[t] >= min_count]
    return list(SPECIALS) + kept[:None if max_size is None else max_size - 4]


def test_reserved_ids():
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert Vocabulary.build(SENTENCES).tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]


@pytest.mark.parametrize("min_count,max_size", [(1, None), (2, None), (3, None), (1, 6), (2, 5),
                                                (1, 4)])
def test_build_matches_brute_force(min_count, max_size):
    vocab = Vocabulary.build(SENTENCES, min_count=min_count, max_size=max_size)
    assert vocab.tokens == brute_force(SENTENCES, min_count, max_size)
    assert len(vocab) == len(vocab.tokens)
    if max_size is not None:
        assert len(vocab) <= max_size
    dropped = [t for t in "abcdef" if t not in vocab]
    assert vocab.encode(dropped) == [UNK_ID] * len(dropped)


def test_corpus_specials_reuse_reserved_ids():
    vocab = Vocabulary.build([["x", "<unk>", "y", "<eos>", "<unk>"]])
    assert len(vocab) == 6
    assert vocab.encode(["<unk>", "<eos>", "x"]) == [UNK_ID, EOS_ID, vocab.tokens.index("x")]


def test_encode_decode_round_trip():
    vocab = Vocabulary.build(SENTENCES)
    for s in SENTENCES:
        assert vocab.decode(vocab.encode(s)) == s
    assert vocab.decode(np.array([0, 2, 3])) == ["<pad>", "<bos>", "<eos>"]
    with pytest.raises(IndexError, match="outside the vocabulary of size 10"):
        vocab.decode([10])


def test_without_specials():
    tags = Vocabulary.build([["NN", "DT", "NN"]], specials=False)
    assert tags.tokens == ["NN", "DT"]
    with pytest.raises(KeyError, match="'VB' is not in this vocabulary"):
        tags.encode(["VB"])
    assert tags.lookup_table().lookup(tf.constant(["DT", "VB"])).numpy().tolist() == [1, -1]


def test_bad_construction():
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match=r"duplicate tokens in vocabulary: \['a'\]"):
        Vocabulary([*SPECIALS, "a", "b", "a"])
    with pytest.raises(ValueError, match="max_size must be >= 4"):
        Vocabulary.build(SENTENCES, max_size=3)
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        Vocabulary.build(SENTENCES, min_count=0)


def test_save_load_round_trip_with_escapes(tmp_path):
    tokens = [*SPECIALS, "a", " ", "\n", "\\", "\\n", "x\ry", "<unk>x"]
    vocab = Vocabulary(tokens)
    vocab.save(tmp_path / "vocab.txt")
    assert len((tmp_path / "vocab.txt").read_text().split("\n")) == len(tokens) + 1
    loaded = Vocabulary.load(tmp_path / "vocab.txt")
    assert loaded.tokens == tokens and loaded.specials
    tags = Vocabulary(["B-NP", "I-NP"], specials=False)
    tags.save(tmp_path / "tags.txt")
    assert not Vocabulary.load(tmp_path / "tags.txt").specials


def test_load_bad_escape(tmp_path):
    (tmp_path / "v.txt").write_text("<pad>\n<unk>\n<bos>\n<eos>\nok\nbad\\t\n")
    with pytest.raises(DataFormatError, match=r"v.txt:6: expected a token with escapes"):
        Vocabulary.load(tmp_path / "v.txt")


def test_lookup_table_eager_traced_and_saved(tmp_path):
    vocab = Vocabulary.build(SENTENCES)
    words = ["a", "zzz", "<eos>", "f", "b"]
    expected = vocab.encode(words)

    class Lookup(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = vocab.lookup_table()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, tokens):
            return self.table.lookup(tokens)

    module = Lookup()
    assert module.table.lookup(tf.constant(words)).numpy().tolist() == expected
    assert module(tf.constant(words)).numpy().tolist() == expected
    tf.saved_model.save(module, str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    assert restored(tf.constant(words)).numpy().tolist() == expected


def test_load_names_file_and_line_of_bad_bytes_and_repeated_tokens(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"<pad>\n<unk>\n<bos>\n<eos>\na\nb\na\n")
    with pytest.raises(DataFormatError) as info:
        Vocabulary.load(path)
    assert str(info.value) == f"{path}:7: expected a token not listed before (line 5 has 'a'), got 'a'"
    path.write_bytes(b"<pad>\n<unk>\n\xfe\n")
    with pytest.raises(DataFormatError, match=r"vocab.txt:3: expected UTF-8 text"):
        Vocabulary.load(path)
    vocab = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "a\nb", "", "c\\"])
    assert Vocabulary.from_text(vocab.to_text()).tokens == vocab.tokens
