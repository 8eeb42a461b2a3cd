"""`text:DIR` streamed from its files (`data.text_stream`) gives the batches of the in-memory
reader of the same files (`data.text_corpus.from_lines`, the one `tfds:` uses): the stream layout
for several batch sizes and window lengths (rows that start inside a line, rows of padding only),
sentences and tokens with padding, bucketing and `pad_to`, bags of words; held-out splits, blank
and long lines and a byte-order mark read alike; shuffling through a buffer keeps every example
once per epoch, seeded."""
import numpy as np
import pytest

import data
from data import text_corpus
from data.tokenize import read_lines

OPTIONS = dict(tokenizer="punctuation", lowercase=True, vocab_size=30, max_line_tokens=12,
               valid_fraction=0.2)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(3)
    words = [f"W{i}" for i in range(40)] + [",", "."]
    lines = [" ".join(rng.choice(words, rng.integers(1, 15))) for _ in range(60)]
    lines[5] = lines[17] = ""  # blank lines are skipped
    (folder / "train.txt").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    (folder / "test.txt").write_text("w1 w2 , w3\nw39 zzz\n", encoding="utf-8")
    streamed = data.load(f"text:{folder}", **OPTIONS)
    opts = text_corpus.CorpusOptions(**OPTIONS)
    in_memory = text_corpus.from_lines(
        f"text:{folder}", {split: (str(folder / f"{split}.txt"),
                                   read_lines(folder / f"{split}.txt"))
                           for split in ("train", "test")}, opts)
    return streamed, in_memory


def batches(corpus, split, form, batch_size, **options):
    return [{k: v.numpy() for k, v in b.items()}
            for b in corpus.dataset(split, form, batch_size, **options)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
            assert x[key].dtype == y[key].dtype, key


def test_sizes_vocabulary_and_info_are_the_in_memory_readers(corpora):
    streamed, in_memory = corpora
    assert streamed.splits == in_memory.splits == ("train", "valid", "test")
    assert streamed.vocab.tokens == in_memory.vocab.tokens
    for split in streamed.splits:
        assert streamed.num_tokens(split) == in_memory.num_tokens(split)
        assert streamed.num_examples(split) == in_memory.num_examples(split)
    for key in ("blank_lines", "dropped_long", "held_out", "vocab_size", "text_pipeline"):
        assert streamed.info[key] == in_memory.info[key], key


@pytest.mark.parametrize("batch_size,seq_len", [(1, 500), (3, 7), (5, 4), (64, 3)])
def test_stream_layout_is_the_in_memory_one(corpora, batch_size, seq_len):
    streamed, in_memory = corpora
    for split in ("train", "valid"):
        assert_same_batches(batches(streamed, split, "stream", batch_size, seq_len=seq_len),
                            batches(in_memory, split, "stream", batch_size, seq_len=seq_len))


@pytest.mark.parametrize("form", ["sentences", "tokens"])
@pytest.mark.parametrize("options", [{}, {"max_length": 6, "bucket_boundaries": [4, 8]},
                                     {"pad_to": 16}])
def test_sequence_forms_are_the_in_memory_ones(corpora, form, options):
    streamed, in_memory = corpora
    for split in ("train", "test"):
        assert_same_batches(batches(streamed, split, form, 4, **options),
                            batches(in_memory, split, form, 4, **options))


def test_bag_of_words_is_the_in_memory_one(corpora):
    streamed, in_memory = corpora
    for split in ("train", "valid", "test"):
        assert_same_batches(batches(streamed, split, "bow", 4), batches(in_memory, split, "bow", 4))


def test_buffer_shuffling_keeps_every_example_once_and_is_seeded(corpora):
    streamed, _ = corpora
    plain = batches(streamed, "train", "tokens", 100)[0]
    first, again, other = (batches(streamed, "train", "tokens", 100, shuffle=True, seed=s)[0]
                           for s in (1, 1, 2))
    np.testing.assert_array_equal(first["tokens"], again["tokens"])
    assert not np.array_equal(first["tokens"], other["tokens"])
    key = lambda rows: sorted(map(tuple, rows.tolist()))  # noqa: E731
    assert key(first["tokens"]) == key(plain["tokens"]) == key(other["tokens"])
