"""The shared tf.data machinery: the stream predicts every token exactly once; bucketing keeps
every example exactly once; masks are prefixes of the right length; shuffling is seeded; bag-of-
words batches equal a dense numpy reference; pad_to gives static shapes."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from data.pipeline import Batching, Sequences, bow_batches, sequence_batches, stream_batches
from data.vocab import EOS_ID

MASKS = {"mask": ("lengths", "tokens")}


def as_numpy(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


def random_sequences(rng, n, max_len=9):
    return Sequences.from_rows(rng.integers(4, 50, size=rng.integers(1, max_len + 1))
                               for _ in range(n))


@pytest.mark.parametrize("n,batch_size,seq_len", [(23, 3, 4), (24, 3, 4), (5, 8, 3), (1, 1, 1),
                                                  (100, 4, 7)])
def test_stream_predicts_every_token_once(n, batch_size, seq_len):
    tokens = np.arange(10, 10 + n)
    dataset = stream_batches(tokens, Batching(batch_size), seq_len)
    assert dataset.element_spec["inputs"].shape == (batch_size, seq_len)
    batches = as_numpy(dataset)
    rows = {k: np.concatenate([b[k] for b in batches], axis=1) for k in batches[0]}  # [B, W·S]
    mask = rows["mask"].astype(bool)
    np.testing.assert_array_equal(rows["targets"][mask], tokens)  # row-major = stream order
    np.testing.assert_array_equal(rows["inputs"][mask], np.concatenate([[EOS_ID], tokens[:-1]]))
    for b in batches:  # each window's mask is a prefix per row
        m = b["mask"]
        assert np.all(np.diff(m, axis=1) <= 0)
    assert len(batches) == -(-(-(-n // batch_size)) // seq_len)


def test_stream_shuffles_windows_with_seed():
    tokens = np.arange(4, 404)
    order = lambda seed: [b["inputs"][0, 0] for b in as_numpy(stream_batches(  # noqa: E731
        tokens, Batching(2, shuffle=True, seed=seed), 5))]
    plain = [b["inputs"][0, 0] for b in as_numpy(stream_batches(tokens, Batching(2), 5))]
    assert order(1) == order(1) != order(2)
    assert sorted(order(1)) == sorted(plain) != order(1)


def test_stream_bad_seq_len():
    with pytest.raises(ValueError, match="seq_len must be a positive integer, got 0"):
        stream_batches(np.arange(5), Batching(2), 0)


def test_sequences_wrap_select():
    s = Sequences.from_rows([[5, 6], [], [7]])
    assert [r.tolist() for r in s.wrap(prefix=2, suffix=3).rows()] == [[2, 5, 6, 3], [2, 3],
                                                                        [2, 7, 3]]
    assert [r.tolist() for r in s.select(np.array([True, False, True])).rows()] == [[5, 6], [7]]


@pytest.mark.parametrize("buckets", [None, [3, 6]])
def test_sequence_batches_keep_every_example_once(buckets):
    rng = np.random.default_rng(0)
    seqs = random_sequences(rng, 37)
    ids = np.arange(37)
    fields = {"tokens": seqs, "lengths": seqs.lengths, "id": ids}
    batches = as_numpy(sequence_batches(fields, Batching(4, shuffle=True, seed=3), MASKS,
                                        bucket_boundaries=buckets))
    seen = collections.Counter()
    for b in batches:
        assert b["tokens"].shape[1] == b["lengths"].max()  # padded to the batch maximum
        np.testing.assert_array_equal(b["mask"], np.arange(b["tokens"].shape[1])
                                      < b["lengths"][:, None])
        for row, length, i in zip(b["tokens"], b["lengths"], b["id"]):
            np.testing.assert_array_equal(row[:length], seqs.rows()[i])
            assert np.all(row[length:] == 0)
            seen[i] += 1
        if buckets:
            assert len({np.searchsorted(buckets, x, side="right") for x in b["lengths"]}) == 1
    assert seen == collections.Counter(ids.tolist())


def test_sequence_batches_seeded_order():
    seqs = random_sequences(np.random.default_rng(1), 30)
    fields = {"tokens": seqs, "lengths": seqs.lengths}

    def first_rows(seed, **kw):
        return [b["tokens"][:, 0].tolist() for b in as_numpy(sequence_batches(
            fields, Batching(5, shuffle=True, seed=seed, **kw), MASKS).take(6))]

    assert first_rows(7) == first_rows(7) != first_rows(8)
    # repeat: 6 batches make one epoch, the first in the same order, the next in a new one
    dataset = sequence_batches(fields, Batching(5, shuffle=True, seed=7, repeat=True), MASKS)
    twelve = [b["tokens"][:, 0].tolist() for b in as_numpy(dataset.take(12))]
    assert twelve[:6] == first_rows(7) and twelve[6:] != twelve[:6]


def test_pad_to_static_shape_and_error():
    seqs = Sequences.from_rows([[4, 5, 6], [7]])
    dataset = sequence_batches({"tokens": seqs, "lengths": seqs.lengths}, Batching(2), MASKS,
                               pad_to=5)
    assert dataset.element_spec["tokens"].shape.as_list() == [None, 5]
    assert dataset.element_spec["mask"].shape.as_list() == [None, 5]
    (batch,) = as_numpy(dataset)
    np.testing.assert_array_equal(batch["mask"], [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"pad_to=2 must be an integer >= the longest .* \(3\)"):
        sequence_batches({"tokens": seqs, "lengths": seqs.lengths}, Batching(2), MASKS, pad_to=2)
    with pytest.raises(ValueError, match="bucket_boundaries must be increasing"):
        sequence_batches({"tokens": seqs, "lengths": seqs.lengths}, Batching(2), MASKS,
                         bucket_boundaries=[4, 2])


def test_batches_feed_a_function_of_unknown_shape():
    seqs = random_sequences(np.random.default_rng(2), 9)
    dataset = sequence_batches({"tokens": seqs, "lengths": seqs.lengths}, Batching(4), MASKS)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None, None], tf.float32)])
    def masked_sum(tokens, mask):
        return tf.reduce_sum(tf.cast(tokens, tf.float32) * mask)

    total = sum(float(masked_sum(b["tokens"], b["mask"])) for b in dataset)
    assert total == float(seqs.values.sum())


def test_bow_batches_equal_dense_reference():
    rng = np.random.default_rng(4)
    vocab_size, docs = 7, 11
    dense = np.zeros((docs, vocab_size))
    rows, counts = [], []
    for d in range(docs):
        words = rng.choice(vocab_size, size=rng.integers(1, 5), replace=False)
        c = rng.integers(1, 6, size=len(words))
        dense[d, words] = c
        rows.append(words)
        counts.extend(c)
    labels = rng.integers(0, 3, size=docs)
    batches = as_numpy(bow_batches(Sequences.from_rows(rows), np.array(counts), labels,
                                   vocab_size, Batching(4)))
    np.testing.assert_array_equal(np.concatenate([b["counts"] for b in batches]), dense)
    np.testing.assert_array_equal(np.concatenate([b["labels"] for b in batches]), labels)
    np.testing.assert_array_equal(np.concatenate([b["lengths"] for b in batches]), dense.sum(1))
    assert batches[0]["counts"].dtype == np.float32 and batches[0]["labels"].dtype == np.int32


def test_parallel_target_extras_align_with_the_targets():
    """A target extra has one value per target word and one for `<eos>`; it is batched (and
    dropped by `max_length`) with its example; a misaligned one is refused by name."""
    from data import forms
    source = {"train": Sequences.from_rows([[5, 6], [7], [5, 6, 7]])}
    target = {"train": Sequences.from_rows([[8], [9, 10], [8, 9, 10, 11]])}
    extra = {"train": Sequences.from_rows([[1, 2], [3, 4, 5], [6, 7, 8, 9, 10]])}
    build = forms.parallel(source, target, {"marks": extra})
    batch = next(iter(build("train", Batching(3, shuffle=False), max_length=3)))
    np.testing.assert_array_equal(batch["marks"], [[1, 2, 0], [3, 4, 5]])
    np.testing.assert_array_equal(batch["target_targets"], [[8, EOS_ID, 0], [9, 10, EOS_ID]])
    bad = forms.parallel(source, target, {"marks": {"train": target["train"]}})
    with pytest.raises(ValueError, match="target extra 'marks' of split 'train' is not aligned"):
        bad("train", Batching(3))
