"""Evaluation metrics for latent-variable models of text (pure functions).

- `perplexity(nll_sum, num_tokens)` = exp(nll_sum / num_tokens): from −Σ ELBO it is an upper
  bound on the true perplexity, from −Σ log p̂(x) of importance sampling
  (`tflv.vi.importance_sampled_log_marginal`) a tighter estimate (Burda et al. 2016).
- `kl`: KL(q(z | x) || p(z)), `tflv.vi.kl_divergence` (closed form where known).
- `active_units(means, threshold)`: A_u = #{d : Cov_x(E_q[z_d | x]) > δ} (Burda et al. 2016,
  δ = 0.01).
- `mutual_information(posterior, z)`: I_q(x; z) = E_x E_{q(z|x)}[log q(z | x) − log q(z)] with the
  aggregate posterior q(z) = (1/N) Σ_n q(z | x_n) over the N examples given (He et al. 2019):
  exact in expectation for x uniform over those N examples.
- Tag induction (Johnson 2007; Christodoulopoulos et al. 2010): many-to-one accuracy (each
  induced cluster is labelled with its most frequent gold tag), one-to-one accuracy (the best
  injective cluster → tag map, the Hungarian algorithm on the contingency table), and the
  V-measure 2hc / (h + c), h = 1 − H(T | C) / H(T), c = 1 − H(C | T) / H(C)
  (Rosenberg & Hirschberg 2007; h = 1 when H(T) = 0, c = 1 when H(C) = 0).
- `npmi(topics, counts)`: topic coherence, the mean over pairs of a topic's top words of
  NPMI(w_i, w_j) = log(p(w_i, w_j) / (p(w_i) p(w_j))) / −log p(w_i, w_j), with document
  frequencies of the corpus given (Lau et al. 2014); −1 when a pair never co-occurs and 1 when it
  occurs in every document (Bouma 2009).
- `topic_diversity(topics)`: the share of distinct words among all topics' top-N words,
  |∪_k top_N(k)| / (K N), N = 25 (Dieng, Ruiz & Blei 2020): 1 when no two topics share a top
  word, 1/K when every topic has the same top words (collapsed topics).

#### References
- Burda, Grosse & Salakhutdinov (2016). Importance Weighted Autoencoders.
- He, Spokoyny, Neubig & Berg-Kirkpatrick (2019). Lagging Inference Networks and Posterior
  Collapse in Variational Autoencoders.
- Johnson (2007). Why Doesn't EM Find Good HMM POS-Taggers?
- Christodoulopoulos, Goldwater & Steedman (2010). Two Decades of Unsupervised POS Induction.
- Rosenberg & Hirschberg (2007). V-Measure: A Conditional Entropy-Based External Cluster
  Evaluation Measure.
- Bouma (2009). Normalized (Pointwise) Mutual Information in Collocation Extraction.
- Dieng, Ruiz & Blei (2020). Topic Modeling in Embedding Spaces. TACL 8.
- Lau, Newman & Baldwin (2014). Machine Reading Tea Leaves: Automatically Evaluating Topic
  Coherence and Topic Model Quality.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.vi.elbo import kl_divergence as kl

tfd = tfp.distributions

__all__ = ["perplexity", "kl", "active_units", "mutual_information", "many_to_one_accuracy",
           "one_to_one_accuracy", "v_measure", "npmi", "topic_diversity", "exp_nats"]


def perplexity(nll_sum, num_tokens) -> tf.Tensor:
    """exp(nll_sum / num_tokens); `nll_sum` in nats (−Σ ELBO or −Σ log p̂(x)), `num_tokens` > 0."""
    nll_sum = tf.convert_to_tensor(nll_sum)
    num_tokens = tf.cast(num_tokens, nll_sum.dtype)
    with tf.control_dependencies([tf.debugging.assert_positive(
            num_tokens, message="perplexity: num_tokens must be > 0")]):
        return tf.exp(nll_sum / num_tokens)


def exp_nats(nats: float) -> float:
    """exp(nats) as a Python float, `inf` where it overflows float64 (nats > ~709.78).

    The perplexity of a split from its mean NLL per token: a badly trained model's true
    perplexity can exceed float64, and it is then reported as `inf`, never as a clamped number.

    >>> exp_nats(0.0), exp_nats(1000.0)
    (1.0, inf)
    """
    try:
        return math.exp(nats)
    except OverflowError:
        return math.inf


def active_units(means, threshold: float = 0.01) -> tf.Tensor:
    """int32 count of dimensions d with Var_n(means[n, d]) > threshold.

    Args:
      means: `[N, D]` posterior means E_q[z | x_n] over a data set.
    """
    means = tf.convert_to_tensor(means)
    if means.shape.rank != 2:
        raise ValueError(f"means must be [N, D], got shape {means.shape}")
    variance = tf.math.reduce_variance(means, axis=0)  # [D]
    return tf.reduce_sum(tf.cast(variance > threshold, tf.int32))


def mutual_information(posterior: tfd.Distribution, z) -> tf.Tensor:
    """I_q(x; z) estimated with samples: mean over (s, n) of log q(z_sn | x_n) − log q̄(z_sn).

    Args:
      posterior: q(z | x_n), batch shape `[N]`.
      z: samples z_sn ~ q(z | x_n), `[S, N, ...event]`.

    Returns:
      scalar, in nats.
    """
    z = tf.convert_to_tensor(z, dtype=posterior.dtype)
    event_rank = posterior.event_shape.rank
    if posterior.batch_shape.rank != 1:
        raise ValueError(f"posterior must have batch shape [N], got {posterior.batch_shape}")
    if z.shape.rank != 2 + event_rank or \
            not z.shape[1:].is_compatible_with(posterior.batch_shape + posterior.event_shape):
        raise ValueError(f"z must be [S, N, *event] = [S, {posterior.batch_shape[0]}, "
                         f"{', '.join(map(str, posterior.event_shape))}], got shape {z.shape}")
    num = tf.shape(z)[1]
    flat = tf.reshape(z, tf.concat([[-1, 1], tf.shape(z)[2:]], axis=0))  # [S·N, 1, *event]
    cross = posterior.log_prob(flat)  # [S·N, N]: log q(z_sn | x_m)
    own = tf.reshape(posterior.log_prob(z), [-1])  # [S·N]
    log_aggregate = tf.reduce_logsumexp(cross, axis=1) - tf.math.log(tf.cast(num, cross.dtype))
    return tf.reduce_mean(own - log_aggregate)


def contingency(pred, gold, mask=None) -> np.ndarray:
    """Counts `[C, T]` of (cluster, tag) pairs over the unmasked positions."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    if pred.shape != gold.shape:
        raise ValueError(f"pred {pred.shape} and gold {gold.shape} must have the same shape")
    keep = np.ones(pred.shape, bool) if mask is None else np.asarray(mask).astype(bool)
    if keep.shape != pred.shape:
        raise ValueError(f"mask {keep.shape} must have the shape of pred {pred.shape}")
    pred, gold = pred[keep].astype(np.int64), gold[keep].astype(np.int64)
    if pred.size == 0:
        raise ValueError("no unmasked positions to score")
    if pred.min() < 0 or gold.min() < 0:
        raise ValueError("cluster and tag ids must be >= 0")
    table = np.zeros((pred.max() + 1, gold.max() + 1), np.int64)
    np.add.at(table, (pred, gold), 1)
    return table


def many_to_one_accuracy(pred, gold, mask=None) -> float:
    """Accuracy after mapping each cluster to its most frequent gold tag.

    Args:
      pred: int `[...]` induced cluster ids; gold: int `[...]` tags; mask: bool `[...]` or None.
    """
    table = contingency(pred, gold, mask)
    return float(table.max(axis=1).sum() / table.sum())


def one_to_one_accuracy(pred, gold, mask=None) -> float:
    """Accuracy under the best one-to-one cluster → tag map (Hungarian algorithm)."""
    table = contingency(pred, gold, mask)
    rows, cols = scipy.optimize.linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _conditional_entropy(table: np.ndarray) -> float:
    """H(column | row) of the joint given by a count table [R, C]."""
    total = table.sum()
    return sum(row.sum() / total * _entropy(row) for row in table if row.sum() > 0)


def v_measure(pred, gold, mask=None) -> float:
    """The V-measure (β = 1) of clusters `pred` against tags `gold`."""
    table = contingency(pred, gold, mask)  # [C, T]
    h_tag, h_cluster = _entropy(table.sum(axis=0)), _entropy(table.sum(axis=1))
    homogeneity = 1.0 if h_tag == 0 else 1.0 - _conditional_entropy(table) / h_tag
    completeness = 1.0 if h_cluster == 0 else 1.0 - _conditional_entropy(table.T) / h_cluster
    if homogeneity + completeness == 0:
        return 0.0
    return 2.0 * homogeneity * completeness / (homogeneity + completeness)


def npmi(topics, counts) -> np.ndarray:
    """Per-topic NPMI coherence from document co-occurrence.

    Args:
      topics: int `[K, N]` each topic's top-N word ids (N ≥ 2).
      counts: `[D, V]` document-word counts (dense array or scipy sparse matrix).

    Returns:
      float64 `[K]`: the mean NPMI over the N(N−1)/2 pairs of each topic.
    """
    topics = np.asarray(topics)
    if topics.ndim != 2 or topics.shape[1] < 2:
        raise ValueError(f"topics must be [K, N] with N >= 2 words, got shape {topics.shape}")
    if counts.ndim != 2 or topics.max() >= counts.shape[1] or topics.min() < 0:
        raise ValueError(f"counts must be [D, V] with V > every topic word id; got counts "
                         f"{counts.shape}, word ids in [{topics.min()}, {topics.max()}]")
    num_docs = counts.shape[0]
    i, j = np.triu_indices(topics.shape[1], k=1)
    scores = []
    for words in topics:
        present = counts[:, words]
        present = (present.toarray() if hasattr(present, "toarray") else np.asarray(present)) > 0
        present = present.astype(np.float64)  # [D, N]
        p_word = present.sum(axis=0) / num_docs  # [N]
        p_pair = (present.T @ present)[i, j] / num_docs  # [pairs]
        with np.errstate(divide="ignore", invalid="ignore"):
            pmi = np.log(p_pair / (p_word[i] * p_word[j]))
            value = pmi / -np.log(p_pair)
        value = np.where(p_pair == 0, -1.0, np.where(p_pair == 1, 1.0, value))
        scores.append(value.mean())
    return np.asarray(scores)


def topic_diversity(topics) -> float:
    """|∪_k topics[k]| / (K N): the share of distinct word ids among all topics' top words.

    Args:
      topics: int `[K, N]`, each topic's top-N word ids (Dieng et al. 2020 take N = 25).

    >>> topic_diversity([[0, 1], [1, 2]])  # 3 distinct words of 4
    0.75
    """
    topics = np.asarray(topics)
    if topics.ndim != 2 or topics.size == 0:
        raise ValueError(f"topics must be [K, N] word ids, got shape {topics.shape}")
    return float(np.unique(topics).size / topics.size)
