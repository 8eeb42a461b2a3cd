"""Conjugacy (Strategy 3 of the tutorial): closed-form posteriors and mean-field LDA.

Dirichlet–multinomial. With θ ~ Dir(α) and counts n | θ ~ Mult(N, θ), the posterior is
Dir(α + n) (`dirichlet_multinomial_posterior`).

Latent Dirichlet allocation (Blei et al. 2003): topics β_k ~ Dir(η) over V words, per document
θ_d ~ Dir(α) over K topics, and each token's topic z ~ Cat(θ_d), word w ~ Cat(β_z). The
mean-field family q(β) q(θ) q(z) = Π_k Dir(β_k; λ_k) Π_d Dir(θ_d; γ_d) Π_{d,w} Cat(φ_dw) is
conditionally conjugate, so each coordinate update is closed form (Hoffman et al. 2010, eq. 2–3):

    φ_dwk ∝ exp(E[log θ_dk] + E[log β_kw]),   γ_dk = α + Σ_w n_dw φ_dwk,   (local, to convergence)
    λ_kw = η + Σ_d n_dw φ_dwk,                                              (global)

with E[log θ_dk] = ψ(γ_dk) − ψ(Σ_j γ_dj) (and likewise for β). `LDA.cavi` alternates the
local updates for every document (run per document until the mean absolute change of γ_d is
below a tolerance) and the global update: batch coordinate-ascent VI. `LDA.online_vb` is
Hoffman et al.'s stochastic version: on a minibatch of S of the D documents,

    λ ← (1 − ρ_t) λ + ρ_t (η + (D / S) Σ_{d∈batch} n_dw φ_dwk),   ρ_t = (τ0 + t)^{−κ},

t = 0, 1, … counting updates (κ ∈ (0.5, 1] guarantees convergence).

The ELBO, with φ at its optimum given γ, λ (Hoffman et al. 2010, eq. 4; as in scikit-learn):

    L = Σ_d [Σ_w n_dw log Σ_k exp(E[log θ_dk] + E[log β_kw])
             + Σ_k ((α − γ_dk) E[log θ_dk] + log Γ(γ_dk) − log Γ(α)) + log Γ(Kα) − log Γ(Σ_k γ_dk)]
        + Σ_k [Σ_w ((η − λ_kw) E[log β_kw] + log Γ(λ_kw) − log Γ(η)) + log Γ(Vη) − log Γ(Σ_w λ_kw)].

Perplexity conventions (`LDA.perplexity`): the corpus convention of Blei et al. and
scikit-learn, exp(−L / Σ_d N_d), counts the global (topic) term once; the per-document
convention of NVDM (Miao et al. 2016), exp(mean_d(−L_d / N_d)), uses each document's bracket
L_d only, which bounds E_q(β)[log p(w_d | β)].

Computation is dense over `[D, V]` counts and in float64 by default: exp E[log β] underflows
float32 for rare words once λ_kw ≈ η is small.

#### References
- Blei, Ng & Jordan (2003). Latent Dirichlet Allocation.
- Hoffman, Blei & Bach (2010). Online Learning for Latent Dirichlet Allocation.
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing.
- Kim, Wiseman & Rush (2018). A Tutorial on Deep Latent Variable Models of Natural Language,
  section 5.3 (conjugacy).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def dirichlet_multinomial_posterior(concentration: tf.Tensor, counts: tf.Tensor
                                    ) -> tfd.Dirichlet:
    """p(θ | n) = Dir(α + n) for θ ~ Dir(α), n | θ ~ Mult(Σ n, θ).

    Args:
      concentration: α `[..., K]`, positive.
      counts: n `[..., K]`, non-negative (broadcastable against α).

    Returns:
      `tfd.Dirichlet` with concentration α + n.
    """
    concentration = tf.convert_to_tensor(concentration)
    counts = tf.convert_to_tensor(counts, dtype=concentration.dtype)
    if concentration.shape.rank == 0 or counts.shape.rank == 0:
        raise ValueError("concentration and counts need a category axis [..., K]")
    if not concentration.shape[-1:].is_compatible_with(counts.shape[-1:]):
        raise ValueError(f"concentration {concentration.shape} and counts {counts.shape} must have"
                         " the same number of categories K on the last axis")
    checks = [tf.debugging.assert_non_negative(counts, message="counts must be >= 0"),
              tf.debugging.assert_positive(concentration, message="concentration must be > 0")]
    with tf.control_dependencies(checks):
        return tfd.Dirichlet(concentration + counts)


def _dirichlet_expectation(x: tf.Tensor) -> tf.Tensor:
    """E[log p] under Dir(x) along the last axis: ψ(x) − ψ(Σ x)."""
    return tf.math.digamma(x) - tf.math.digamma(tf.reduce_sum(x, axis=-1, keepdims=True))


class LDA(tf.Module):
    """LDA fitted by batch coordinate-ascent VI (`cavi`) or online VB (`online_vb`).

    Args:
      num_topics: K.
      vocab_size: V.
      doc_topic_prior: α (default 1/K, as scikit-learn).
      topic_word_prior: η (default 1/K, as scikit-learn).
      max_doc_iterations: cap on local (γ, φ) iterations per document.
      doc_tolerance: a document's local updates stop when mean_k |Δγ_dk| < this.
      seed: λ is initialized to Gamma(100, 1/100) draws (Hoffman et al. 2010) from this seed.
      dtype: float64 (default) or float32.

    Attributes:
      topic_word: λ, `tf.Variable [K, V]`.
      num_updates: t, the number of `online_vb` updates so far.

    Examples:
    >>> import numpy as np
    >>> counts = np.kron(np.eye(2), np.ones((3, 3))) * 4   # D = 6 documents, two word groups
    >>> lda = LDA(num_topics=2, vocab_size=6, seed=0)
    >>> trace = lda.cavi(counts, num_iterations=10)        # the ELBO after each sweep
    >>> bool(np.all(np.diff(trace.numpy()) > -1e-6))       # coordinate ascent never goes down
    True
    >>> sorted(sorted(words) for words in lda.top_words(3).numpy().tolist())  # one topic per group
    [[0, 1, 2], [3, 4, 5]]
    >>> float(lda.perplexity(counts)) < 6                  # better than uniform over V = 6
    True
    """

    def __init__(self, num_topics: int, vocab_size: int, doc_topic_prior: float | None = None,
                 topic_word_prior: float | None = None, max_doc_iterations: int = 100,
                 doc_tolerance: float = 1e-3, seed: int = 0, dtype: tf.DType = tf.float64,
                 name: str | None = None):
        super().__init__(name=name)
        if num_topics < 1 or vocab_size < 1:
            raise ValueError(f"num_topics and vocab_size must be >= 1, got {num_topics}, "
                             f"{vocab_size}")
        self.num_topics, self.vocab_size, self.dtype = num_topics, vocab_size, dtype
        self.doc_topic_prior = 1.0 / num_topics if doc_topic_prior is None else doc_topic_prior
        self.topic_word_prior = 1.0 / num_topics if topic_word_prior is None else topic_word_prior
        if self.doc_topic_prior <= 0 or self.topic_word_prior <= 0:
            raise ValueError("doc_topic_prior and topic_word_prior must be > 0")
        self.max_doc_iterations, self.doc_tolerance = max_doc_iterations, doc_tolerance
        self.topic_word = tf.Variable(
            tf.random.stateless_gamma([num_topics, vocab_size], seed=[seed, 0], alpha=100.0,
                                      dtype=dtype) / 100.0, name="topic_word")  # λ [K, V]
        self.num_updates = tf.Variable(0, dtype=tf.int64, name="num_updates")
        spec = [tf.TensorSpec([None, vocab_size], dtype)]
        self._local = tf.function(self._local_step, input_signature=spec)

    def _check_counts(self, counts) -> tf.Tensor:
        counts = tf.convert_to_tensor(counts, dtype=self.dtype)
        if counts.shape.rank != 2 or counts.shape[-1] != self.vocab_size:
            raise ValueError(f"counts must be [D, {self.vocab_size}] (documents × vocabulary), "
                             f"got shape {counts.shape}")
        return counts

    def _local_step(self, counts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Local updates to convergence at the current λ.

        Args:
          counts: `[D, V]`.

        Returns:
          γ `[D, K]`; the statistics Σ_d n_dw φ_dwk `[K, V]` with φ from the final γ; and each
          document's bracket L_d of the ELBO `[D]`.
        """
        eps = tf.constant(1e-16 if self.dtype == tf.float64 else 1e-7, self.dtype)
        alpha = tf.constant(self.doc_topic_prior, self.dtype)
        elog_beta = _dirichlet_expectation(self.topic_word)  # [K, V]
        exp_elog_beta = tf.exp(elog_beta)
        num_docs = tf.shape(counts)[0]

        def body(i, gamma, done):
            exp_elog_theta = tf.exp(_dirichlet_expectation(gamma))  # [D, K]
            norm = tf.matmul(exp_elog_theta, exp_elog_beta) + eps  # [D, V]
            new = alpha + exp_elog_theta * tf.matmul(counts / norm, exp_elog_beta,
                                                     transpose_b=True)  # [D, K]
            change = tf.reduce_mean(tf.abs(new - gamma), axis=-1)  # [D]
            new = tf.where(done[:, tf.newaxis], gamma, new)  # converged documents stay put
            return i + 1, new, done | (change < self.doc_tolerance)

        _, gamma, _ = tf.while_loop(
            lambda i, gamma, done: (i < self.max_doc_iterations) & ~tf.reduce_all(done), body,
            (tf.constant(0), tf.ones([num_docs, self.num_topics], self.dtype),
             tf.zeros([num_docs], tf.bool)))
        elog_theta = _dirichlet_expectation(gamma)  # [D, K]
        exp_elog_theta = tf.exp(elog_theta)
        # Σ_k exp(E[log θ_dk] + E[log β_kw]) as a matmul: [D, V]
        norm = tf.matmul(exp_elog_theta, exp_elog_beta)
        stats = exp_elog_beta * tf.matmul(exp_elog_theta, counts / (norm + eps), transpose_a=True)
        words = tf.reduce_sum(counts * tf.math.log(norm), axis=-1)  # [D]
        bounds = words + self._dirichlet_term(alpha, gamma, elog_theta)
        return gamma, stats, bounds

    @staticmethod
    def _dirichlet_term(prior: tf.Tensor, posterior: tf.Tensor, elog: tf.Tensor) -> tf.Tensor:
        """E_q[log Dir(x; prior)] − E_q[log Dir(x; posterior)] for q = Dir(posterior), per row."""
        size = tf.cast(tf.shape(posterior)[-1], posterior.dtype)
        return (tf.reduce_sum((prior - posterior) * elog + tf.math.lgamma(posterior)
                              - tf.math.lgamma(prior), axis=-1)
                + tf.math.lgamma(prior * size) - tf.math.lgamma(tf.reduce_sum(posterior, -1)))

    def _topic_term(self) -> tf.Tensor:
        eta = tf.constant(self.topic_word_prior, self.dtype)
        return tf.reduce_sum(self._dirichlet_term(
            eta, self.topic_word, _dirichlet_expectation(self.topic_word)))

    def document_topics(self, counts) -> tf.Tensor:
        """γ `[D, K]`: each document's Dirichlet q(θ_d) at the current λ (local step only)."""
        gamma, _, _ = self._local(self._check_counts(counts))
        return gamma

    def elbo(self, counts, per_document: bool = False) -> tf.Tensor:
        """The ELBO of `counts [D, V]` at the current λ: a scalar, or `[D]` brackets L_d."""
        _, _, bounds = self._local(self._check_counts(counts))
        return bounds if per_document else tf.reduce_sum(bounds) + self._topic_term()

    def perplexity(self, counts, per_document: bool = False) -> tf.Tensor:
        """exp(−L / Σ N_d) (corpus), or exp(mean_d(−L_d / N_d)) (per document, NVDM)."""
        counts = self._check_counts(counts)
        if per_document:
            lengths = tf.reduce_sum(counts, axis=-1)
            return tf.exp(tf.reduce_mean(-self.elbo(counts, per_document=True) / lengths))
        return tf.exp(-self.elbo(counts) / tf.reduce_sum(counts))

    def cavi(self, counts, num_iterations: int) -> tf.Tensor:
        """`num_iterations` sweeps of batch coordinate ascent on all of `counts [D, V]`.

        Returns:
          `[num_iterations]` the ELBO after each sweep's local step (before its λ update), a
          non-decreasing sequence up to the local tolerance.
        """
        counts = self._check_counts(counts)
        eta = tf.constant(self.topic_word_prior, self.dtype)
        trace = []
        for _ in range(num_iterations):
            _, stats, bounds = self._local(counts)
            trace.append(tf.reduce_sum(bounds) + self._topic_term())
            self.topic_word.assign(eta + stats)
        return tf.stack(trace)

    def online_vb(self, counts, total_documents: int, offset: float = 10.0,
                  decay: float = 0.7) -> tf.Tensor:
        """One stochastic update of λ from a minibatch `counts [S, V]` of `total_documents` D.

        Args:
          offset: τ0 ≥ 0 (down-weights early updates).
          decay: κ ∈ (0.5, 1], the forgetting rate.

        Returns:
          ρ_t, the step size used.
        """
        if offset < 0 or not 0.5 < decay <= 1.0:
            raise ValueError(f"online_vb needs offset >= 0 and decay in (0.5, 1], got "
                             f"offset={offset}, decay={decay}")
        counts = self._check_counts(counts)
        _, stats, _ = self._local(counts)
        scale = tf.constant(total_documents, self.dtype) / tf.cast(tf.shape(counts)[0], self.dtype)
        rho = tf.pow(tf.constant(offset, self.dtype) + tf.cast(self.num_updates, self.dtype),
                     tf.constant(-decay, self.dtype))
        eta = tf.constant(self.topic_word_prior, self.dtype)
        self.topic_word.assign((1.0 - rho) * self.topic_word + rho * (eta + scale * stats))
        self.num_updates.assign_add(1)
        return rho

    def top_words(self, n: int) -> tf.Tensor:
        """int32 `[K, n]`: each topic's n most probable words under E[β_k] ∝ λ_k."""
        return tf.math.top_k(self.topic_word, k=n).indices
