"""Word classes by the exchange algorithm: the C-class bigram model of highest likelihood.

A class bigram model (Brown et al. 1992) predicts each word through the class of the word before
it: p(w_t | w_{t-1}) = p(c(w_t) | c(w_{t-1})) · p(w_t | c(w_t)). With maximum-likelihood
probabilities, the log-likelihood of bigram counts N(u, v) under a class map c is

    L(c) = Σ_{a,b} f(N(a, b)) − Σ_a f(N_left(a)) − Σ_b f(N_right(b)) + Σ_v f(n_right(v)),

f(x) = x log x, where N(a, b) = Σ_{c(u)=a, c(v)=b} N(u, v) counts class bigrams, N_left(a) and
N_right(b) are its row and column sums and n_right(v) = Σ_u N(u, v). Brown et al. merge classes
bottom-up; the exchange algorithm (Kneser & Ney 1993; Martin, Liermann & Ney 1998) climbs the
same L directly: visit the words by decreasing frequency, take each out of its class and put it
into the class where L is highest, and repeat the passes until no word moves (or `max_passes`).
Only the rows and columns of the two classes involved change, so a move is scored for all C
classes at once in O(C · (classes next to the word)).

Chiu & Rush (2020) assign the words of a blocked HMM language model to blocks by Brown clusters:
the words of one class then share the block of states that emits them
(`tflv.models.HMMLM(word_assignment="clusters")`).

#### Example

    first, second, count = bigram_counts(corpus.dataset("train", "stream", 64), vocab_size)
    clusters = exchange_clusters(first, second, count, vocab_size, num_clusters=128)
    clusters.classes        # [V] class of every word id, every class non-empty
    clusters.log_likelihood # L in nats; class_bigram_log_likelihood(...) recomputes it

#### References

Brown, P. F. et al. (1992). Class-based n-gram models of natural language. Computational
Linguistics 18(4). Kneser, R. & Ney, H. (1993). Improved clustering techniques for class-based
statistical language modelling. Eurospeech. Martin, S., Liermann, J. & Ney, H. (1998).
Algorithms for bigram and trigram word clustering. Speech Communication 24(1).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np
import scipy.sparse
from absl import logging
from scipy.special import xlogy


def bigram_counts(batches: Iterable[Mapping], vocab_size: int, targets: str = "targets",
                  mask: str = "mask") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct bigrams (u, v) of adjacent masked-in ids within each row of `batches`, and
    how often each occurs: (first int64 [P], second int64 [P], count float64 [P]).

    Args:
      batches: dicts with int ids `targets` [B, T] and a 0/1 `mask` [B, T].
      vocab_size: V; every masked-in id must lie in [0, V).
    """
    keys = []
    for batch in batches:
        ids = np.asarray(batch[targets]).astype(np.int64)
        real = np.asarray(batch[mask]) > 0
        inside = real & ((ids < 0) | (ids >= vocab_size))
        if inside.any():
            raise ValueError(f"`{targets}` holds id {ids[inside][0]}, outside the vocabulary "
                             f"[0, {vocab_size})")
        pair = real[:, :-1] & real[:, 1:]
        keys.append(ids[:, :-1][pair] * vocab_size + ids[:, 1:][pair])
    keys, count = np.unique(np.concatenate(keys) if keys else np.zeros(0, np.int64),
                            return_counts=True)
    return keys // vocab_size, keys % vocab_size, count.astype(np.float64)


def _bigram_matrix(first, second, count, vocab_size: int) -> scipy.sparse.csr_matrix:
    first, second = np.asarray(first, np.int64), np.asarray(second, np.int64)
    count = np.asarray(count, np.float64)
    if not first.shape == second.shape == count.shape or first.ndim != 1:
        raise ValueError(f"first, second and count must be 1-D of one length, got shapes "
                         f"{first.shape}, {second.shape}, {count.shape}")
    for name, ids in (("first", first), ("second", second)):
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"bigram {name} ids must be in [0, {vocab_size}), got "
                             f"{ids[(ids < 0) | (ids >= vocab_size)][0]}")
    if count.size and count.min() < 0:
        raise ValueError(f"bigram counts must be non-negative, got {count.min()}")
    return scipy.sparse.csr_matrix((count, (first, second)), shape=(vocab_size, vocab_size))


def class_bigram_log_likelihood(first, second, count, classes, num_classes: int) -> float:
    """L(c) of the module docstring, computed from scratch: Σ N(u, v) log p(v | u) in nats."""
    matrix = _bigram_matrix(first, second, count, len(classes)).tocoo()
    classes = np.asarray(classes)
    between = np.zeros((num_classes, num_classes))
    np.add.at(between, (classes[matrix.row], classes[matrix.col]), matrix.data)
    word_right = np.asarray(matrix.sum(axis=0)).ravel()
    return float(xlogy(between, between).sum() - xlogy(left := between.sum(1), left).sum()
                 - xlogy(right := between.sum(0), right).sum() + xlogy(word_right,
                                                                       word_right).sum())


@dataclasses.dataclass(frozen=True)
class WordClusters:
    """The exchange algorithm's result: `classes` int32 [V] (every class non-empty),
    `log_likelihood` L(c) in nats, `passes` run and `moves` made in each."""
    classes: np.ndarray
    log_likelihood: float
    passes: int
    moves: tuple


def exchange_clusters(first, second, count, vocab_size: int, num_clusters: int,
                      max_passes: int = 10) -> WordClusters:
    """The exchange algorithm (module docstring) on bigram counts N(first[i], second[i]) =
    count[i]: a class for each of the V words, C = `num_clusters` classes, none empty.

    It starts from the round-robin of frequency ranks (rank r → class r mod C, as
    `tflv.distributions.WordBlocks.by_frequency`), so `max_passes=0` returns that assignment;
    each pass can only raise L. Words that never occur stay where they start.
    """
    if not isinstance(num_clusters, (int, np.integer)) or not 1 <= num_clusters <= vocab_size:
        raise ValueError(f"num_clusters must be an integer in [1, vocab_size={vocab_size}], "
                         f"got {num_clusters!r}")
    forward = _bigram_matrix(first, second, count, vocab_size)
    backward = forward.T.tocsr()
    word_left = np.asarray(forward.sum(1)).ravel()   # n_left(w): bigrams that start with w
    word_right = np.asarray(forward.sum(0)).ravel()  # n_right(w)
    frequency = word_left + word_right
    order = np.argsort(-frequency, kind="stable")
    classes = np.empty(vocab_size, np.int64)
    classes[order] = np.arange(vocab_size) % num_clusters
    size = np.bincount(classes, minlength=num_clusters)
    coo = forward.tocoo()
    between = np.zeros((num_clusters, num_clusters))
    np.add.at(between, (classes[coo.row], classes[coo.col]), coo.data)
    left, right = between.sum(1), between.sum(0)
    self_count = np.asarray(forward.diagonal())
    active = order[frequency[order] > 0]
    moves = []
    for pass_ in range(max_passes):
        moved = 0
        for w in active:
            a = classes[w]
            neighbours = []
            for matrix in (forward, backward):  # w → v (r), u → w (l), without w itself
                row = slice(matrix.indptr[w], matrix.indptr[w + 1])
                ids, counts = matrix.indices[row], matrix.data[row]
                keep = ids != w
                neighbours.append(np.bincount(classes[ids[keep]], counts[keep],
                                              minlength=num_clusters))
            r, l = neighbours
            s, nl, nr = self_count[w], word_left[w], word_right[w]
            # Take w out of a.
            between[a, :] -= r
            between[:, a] -= l
            between[a, a] -= s
            left[a] -= nl
            right[a] -= nr
            gain = _insertion_gains(between, left, right, r, l, s, nl, nr)
            b = a if size[a] == 1 else int(np.argmax(gain))
            if gain[b] <= gain[a] + 1e-9 * max(1.0, abs(gain[a])):
                b = a
            between[b, :] += r
            between[:, b] += l
            between[b, b] += s
            left[b] += nl
            right[b] += nr
            if b != a:
                classes[w] = b
                size[a] -= 1
                size[b] += 1
                moved += 1
        moves.append(moved)
        logging.info("exchange clustering pass %d: %d of %d words moved", pass_ + 1, moved,
                     len(active))
        if not moved:
            break
    classes = classes.astype(np.int32)
    return WordClusters(classes, class_bigram_log_likelihood(first, second, count, classes,
                                                             num_clusters),
                        len(moves), tuple(moves))


def _insertion_gains(between, left, right, r, l, s, nl, nr) -> np.ndarray:
    """The change of L [C] from adding a word (successor classes r [C], predecessor classes
    l [C], self-bigram count s, totals nl and nr) to each class b of `between` [C, C]."""
    columns, rows = np.flatnonzero(r), np.flatnonzero(l)
    gain = np.zeros(len(left))
    if columns.size:  # row b gains r: cells (b, d)
        old = between[:, columns]
        gain += (xlogy(new := old + r[columns], new) - xlogy(old, old)).sum(1)
    if rows.size:  # column b gains l: cells (c, b)
        old = between[rows, :]
        gain += (xlogy(new := old + l[rows, None], new) - xlogy(old, old)).sum(0)
    # Cell (b, b) gains r[b] + l[b] + s at once, not r[b] and l[b] apart as counted above.
    diagonal = np.diagonal(between)
    for part in (r, l):
        gain -= xlogy(new := diagonal + part, new) - xlogy(diagonal, diagonal)
    gain += xlogy(new := diagonal + r + l + s, new) - xlogy(diagonal, diagonal)
    gain -= xlogy(new := left + nl, new) - xlogy(left, left)
    gain -= xlogy(new := right + nr, new) - xlogy(right, right)
    return gain
