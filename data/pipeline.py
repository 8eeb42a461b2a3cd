"""The tf.data machinery every corpus shares: streams, padded sequence batches, bags of words.

*Stream* (the classic LM "batchify"). A token stream x_1..x_N (N tokens, `<eos>` included) is
read with one start token x_0 = `<eos>` in front, as if a previous sentence had just ended, so
every one of the N tokens is a target exactly once: inputs x_{0..N-1}, targets x_{1..N}. The N
(input, target) pairs are cut into B rows of R = ceil(N / B) consecutive pairs (row b holds pairs
bR .. bR+R-1), each row is padded to W·S with W = ceil(R / S), and batch w is window w of every
row: `inputs[b, s] = x_{bR + wS + s}`. Padding is masked (mask 0), nothing is dropped, and the
hidden state of row b carries over from batch w to batch w+1.

*Sequences*. Variable-length examples are stored flat (values, lengths) as ragged tensors; the
example *indices* are shuffled (seeded), grouped by length (`bucket_by_sequence_length`) and
batched, and each batch is gathered at once and padded to the batch maximum or to a static
`pad_to` (for XLA); each `*lengths` field gets a float32
prefix mask `mask[b, t] = 1[t < lengths[b]]`.

*Bags of words*. A document is sparse (word, count) pairs; a batch is densified to
`counts[b, v] = Σ_{pairs (v, c) of document b} c`, float32 [B, V].

#### References
Mikolov et al. (2010), "Recurrent neural network based language model"; Zaremba, Sutskever &
Vinyals (2014), "Recurrent Neural Network Regularization" (the batchify / truncated BPTT layout).
Miao, Yu & Blunsom (2016), "Neural Variational Inference for Text Processing" (bag-of-words input).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from data.vocab import EOS_ID, PAD_ID

STREAM_START = EOS_ID


@dataclasses.dataclass(frozen=True)
class Batching:
    """How examples become batches: size, seeded shuffling, endless repetition."""
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    repeat: bool = False

    def __post_init__(self):
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    def order(self, dataset: tf.data.Dataset, size: int) -> tf.data.Dataset:
        """Shuffles `dataset` of `size` elements (reshuffled each epoch, seeded) and repeats it."""
        if self.shuffle:
            dataset = dataset.shuffle(max(size, 1), seed=self.seed, reshuffle_each_iteration=True)
        return dataset.repeat() if self.repeat else dataset


@dataclasses.dataclass(frozen=True)
class Sequences:
    """N variable-length integer sequences stored flat: `values` [Σ lengths], `lengths` [N]."""
    values: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[int]]) -> "Sequences":
        rows = [np.asarray(r, np.int64) for r in rows]
        values = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return cls(values.astype(np.int64), np.array([len(r) for r in rows], np.int64))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def starts(self) -> np.ndarray:
        """int64 [N]: the offset of each sequence in `values`."""
        return np.cumsum(self.lengths) - self.lengths

    def rows(self) -> list[np.ndarray]:
        """The N sequences as arrays."""
        return np.split(self.values, np.cumsum(self.lengths)[:-1]) if len(self) else []

    def select(self, keep: np.ndarray) -> "Sequences":
        """The sequences where `keep` (bool [N]) is true, in order."""
        return Sequences(self.values[np.repeat(keep, self.lengths)], self.lengths[keep])

    def wrap(self, prefix: int | None = None, suffix: int | None = None) -> "Sequences":
        """Each sequence with `prefix` put in front of it and/or `suffix` after it."""
        values, lengths = self.values, self.lengths
        if prefix is not None:
            values = np.insert(values, np.cumsum(lengths) - lengths, prefix)
            lengths = lengths + 1
        if suffix is not None:
            values = np.insert(values, np.cumsum(lengths), suffix)
            lengths = lengths + 1
        return Sequences(values, lengths)

    def to_ragged(self) -> tf.RaggedTensor:
        """int32 [N, (lengths)]."""
        return tf.RaggedTensor.from_row_lengths(self.values.astype(np.int32), self.lengths)


Field = Sequences | np.ndarray


def _index_batches(size: int, batching: Batching, length: tf.Tensor | None = None,
                   bucket_boundaries: Sequence[int] | None = None) -> tf.data.Dataset:
    """Batches of example indices int64 [b]: ordered by `batching`, optionally length-bucketed.

    Working on indices keeps the per-example cost of tf.data at one scalar; the examples are
    gathered a whole batch at a time (`tf.gather` of ragged rows) afterwards.
    """
    indices = batching.order(tf.data.Dataset.range(size), size)
    if bucket_boundaries is None:
        return indices.batch(batching.batch_size)
    return indices.bucket_by_sequence_length(
        lambda i: tf.gather(length, i), list(bucket_boundaries),
        [batching.batch_size] * (len(bucket_boundaries) + 1))


def stream_batches(tokens: np.ndarray, batching: Batching, seq_len: int) -> tf.data.Dataset:
    """The continuous LM stream of `tokens` (int [N]) in windows (see the module docstring).

    Returns:
      Batches `{"inputs": int32 [B, S], "targets": int32 [B, S], "mask": float32 [B, S]}`,
      W = ceil(ceil(N / B) / S) of them per epoch, S = `seq_len` static. With `batching.shuffle`
      the windows come in a seeded random order (for models that carry no state across batches).
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    tokens = np.asarray(tokens, np.int32)
    n, b = len(tokens), batching.batch_size
    row = -(-n // b)
    windows = max(-(-row // seq_len), 1)
    stream = np.concatenate([[STREAM_START], tokens]).astype(np.int32)

    def layout(values: np.ndarray) -> np.ndarray:
        """[N] → [W, B, S]: rows of R values, padded to W·S, window-major."""
        rows = np.zeros(b * row, values.dtype)
        rows[:n] = values
        padded = np.zeros((b, windows * seq_len), values.dtype)
        padded[:, :row] = rows.reshape(b, row)
        return padded.reshape(b, windows, seq_len).transpose(1, 0, 2)

    dataset = tf.data.Dataset.from_tensor_slices({
        "inputs": layout(stream[:-1]), "targets": layout(stream[1:]),
        "mask": layout(np.ones(n, np.float32))})
    return batching.order(dataset, windows).prefetch(tf.data.AUTOTUNE)


def sequence_batches(fields: Mapping[str, Field], batching: Batching,
                     masks: Mapping[str, tuple[str, str]], pad_to: int | None = None,
                     bucket_boundaries: Sequence[int] | None = None) -> tf.data.Dataset:
    """Padded batches of N aligned examples.

    Args:
      fields: per name, `Sequences` of N rows (padded with `PAD_ID`) or an array [N] of scalars.
      batching: batch size, shuffling, repetition.
      masks: per mask name, `(lengths field, sequence field)`: the float32 mask [B, T] that is 1
        on the first `lengths` positions of that sequence field's padded width T.
      pad_to: pad every sequence field to this static length (instead of the batch maximum).
      bucket_boundaries: group examples by length (the largest of the masks' lengths) into
        buckets `[0, b_0), [b_0, b_1), …, [b_last, ∞)` before batching, so batches hold examples
        of similar length; each example still appears exactly once per epoch.

    Returns:
      Dict batches: the int32 fields padded to [B, T] (or [B, pad_to]), scalars [B], and the masks.
    """
    sizes = {name: len(f) for name, f in fields.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"fields must have the same number of examples, got {sizes}")
    longest = max((int(f.lengths.max(initial=0)) for f in fields.values()
                   if isinstance(f, Sequences)), default=0)
    if pad_to is not None and (not isinstance(pad_to, (int, np.integer)) or pad_to < longest):
        raise ValueError(f"pad_to={pad_to!r} must be an integer >= the longest sequence of this "
                         f"split ({longest}); raise it, or drop long training examples with "
                         "max_length")
    if bucket_boundaries is not None:
        bounds = list(bucket_boundaries)
        if not bounds or any(not isinstance(x, (int, np.integer)) or x < 1 for x in bounds) \
                or any(x >= y for x, y in zip(bounds, bounds[1:])):
            raise ValueError("bucket_boundaries must be increasing positive integers, got "
                             f"{bucket_boundaries!r}")
    tensors = {name: f.to_ragged() if isinstance(f, Sequences) else tf.constant(f, tf.int32)
               for name, f in fields.items()}
    length = tf.reduce_max(tf.stack([tensors[lengths] for lengths, _ in masks.values()]), 0)

    def gather(indices):  # int64 [b] → the batch dict
        batch = {}
        for name, t in tensors.items():
            rows = tf.gather(t, indices)
            batch[name] = (rows.to_tensor(PAD_ID, shape=[None, pad_to])
                           if isinstance(rows, tf.RaggedTensor) else rows)
        for mask, (lengths, sequence) in masks.items():
            batch[mask] = tf.sequence_mask(batch[lengths], tf.shape(batch[sequence])[1],
                                           dtype=tf.float32)
        return batch

    batches = _index_batches(next(iter(sizes.values())), batching, length, bucket_boundaries)
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def bow_batches(indices: Sequences, counts: np.ndarray, labels: np.ndarray, vocab_size: int,
                batching: Batching) -> tf.data.Dataset:
    """Bag-of-words batches densified from sparse (word, count) pairs.

    Args:
      indices: D documents' 0-based word ids (`Sequences`).
      counts: int [Σ lengths], the count of each (document, word) pair, aligned with indices.
      labels: int [D].
      vocab_size: V.
      batching: batch size, shuffling, repetition.

    Returns:
      Batches `{"counts": float32 [B, V], "labels": int32 [B], "lengths": float32 [B]}` where
      `lengths = Σ_v counts[:, v]`.
    """
    ids = indices.to_ragged()  # int32 [D, (n_d)]
    values = tf.RaggedTensor.from_row_lengths(np.asarray(counts, np.float32), indices.lengths)
    labels = tf.constant(labels, tf.int32)

    def densify(batch_indices):  # int64 [b] → the batch dict
        rows = tf.gather(ids, batch_indices)
        b = tf.cast(rows.nrows(), tf.int32)
        positions = tf.stack([tf.cast(rows.value_rowids(), tf.int32), rows.flat_values], axis=1)
        dense = tf.scatter_nd(positions, tf.gather(values, batch_indices).flat_values,
                              tf.stack([b, vocab_size]))
        return {"counts": dense, "labels": tf.gather(labels, batch_indices),
                "lengths": tf.reduce_sum(dense, axis=1)}

    batches = _index_batches(len(indices), batching)
    return batches.map(densify, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
