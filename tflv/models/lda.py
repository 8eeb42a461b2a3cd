"""Latent Dirichlet allocation in the training loop: online variational Bayes, no gradients.

The model and its mean-field posterior are those of `tflv.vi.conjugate.LDA` (Blei et al. 2003):
topics β_k ~ Dir(η), document proportions θ_d ~ Dir(α), z_dn ~ Cat(θ_d), w_dn ~ Cat(β_{z_dn}),
with q(β) = Π_k Dir(λ_k). Training is Hoffman et al.'s online VB: each step fits the local
posteriors q(θ_d) q(z_d) of a minibatch of S documents at the current λ and moves λ towards the
estimate the whole corpus of D documents would give,

    λ ← (1 − ρ_t) λ + ρ_t (η + (D / S) Σ_{d ∈ batch} n_dw φ_dwk),   ρ_t = (τ0 + t)^{−κ},

which is a natural-gradient step on the ELBO. The trainer calls `apply_update(batch)` in place of a
gradient step (see `trainers/loop.py`). Under a `tf.distribute` strategy every replica gathers the
global batch and applies the same update; λ is created with `ONLY_FIRST_REPLICA` aggregation, so
the replicas' identical writes are taken once.

The per-document bound reported is L_d, document d's bracket of the ELBO (the local terms at
converged γ_d, φ_d), a lower bound on E_q(β)[log p(n_d | β)]: `ppl` = exp(mean_d −L_d / N_d) is the
per-document perplexity convention of Miao et al. (2016) (../shared/data/README.md) and
`ppl_corpus` = exp(−Σ_d L_d / Σ_d N_d); the global term of q(β), counted once for the training
corpus, is left out of both, as a neural decoder's point-estimated weights are. `kl` is
KL(q(θ_d) || p(θ_d)) = KL(Dir(γ_d) || Dir(α)), per document.

#### References
- Blei, Ng & Jordan (2003). Latent Dirichlet Allocation. JMLR 3.
- Hoffman, Blei & Bach (2010). Online Learning for Latent Dirichlet Allocation. NIPS.
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing. ICML.
"""
from __future__ import annotations

import dataclasses
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective
from tflv.models.topic_models import (DIVERSITY_WORDS, check_counts, document_metrics,
                                      document_stats, evaluate_topics, topics_signature)
from tflv.vi.conjugate import LDA

tfd = tfp.distributions


def _first_replica_aggregation(next_creator, **kwargs):
    """A variable creator for variables every replica updates identically (take replica 0's)."""
    kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
    return next_creator(**kwargs)


def sample_documents(topics: np.ndarray, doc_topic_prior: float, num_documents: int,
                     length: int, seed: int) -> np.ndarray:
    """Counts `[D, V]` from LDA's generative process with known topics β `[K, V]`.

    θ_d ~ Dir(α 1_K) and, summing out each token's topic, n_d ~ Mult(N, θ_dᵀβ).
    """
    topics = np.asarray(topics, np.float64)
    if topics.ndim != 2 or np.any(topics < 0) or not np.allclose(topics.sum(axis=1), 1.0):
        raise ValueError(f"topics must be [K, V] rows of probabilities, got shape {topics.shape}")
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(topics.shape[0], doc_topic_prior), size=num_documents)
    word_probs = theta @ topics  # [D, V]
    return np.stack([rng.multinomial(length, p / p.sum()) for p in word_probs])


class LatentDirichletAllocation(LatentVariableModel):
    """LDA fitted by online VB inside the trainer (see the module docstring).

    Args:
      vocab_size: V.
      num_topics: K.
      num_documents: D, the size of the training corpus.
      doc_topic_prior, topic_word_prior: α, η (default 1/K each).
      offset, decay: τ0 ≥ 0 and κ ∈ (0.5, 1] of the step size ρ_t = (τ0 + t)^{−κ}.
      seed: seed of λ's initialisation.

    Batch (form `bow`): `counts` float32 `[B, V]`.
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """LDA's hyperparameters (`LatentDirichletAllocation.from_corpus(corpus, config)`)."""
        num_topics: int = cfg.NUM_TOPICS()

    closed_form_update = True

    input_form = "bow"
    datasets = ("news20",)

    def __init__(self, vocab_size: int, num_topics: int, num_documents: int,
                 doc_topic_prior: float | None = None, topic_word_prior: float | None = None,
                 offset: float = 10.0, decay: float = 0.7, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if num_documents < 1:
            raise ValueError(f"num_documents must be >= 1, got {num_documents}")
        if offset < 0 or not 0.5 < decay <= 1.0:
            raise ValueError(f"online VB needs offset >= 0 and decay in (0.5, 1], got "
                             f"offset={offset}, decay={decay}")
        self.vocab_size, self.num_documents = vocab_size, num_documents
        self.offset, self.decay = offset, decay
        with tf.variable_creator_scope(_first_replica_aggregation):
            self.lda = LDA(num_topics, vocab_size, doc_topic_prior=doc_topic_prior,
                           topic_word_prior=topic_word_prior, seed=seed)

    @classmethod
    def _from_config(cls, corpus, config) -> "LatentDirichletAllocation":
        return cls(vocab_size=corpus.info["vocab_size"], num_topics=config.num_topics,
                   num_documents=corpus.num_examples("train"))

    def objective(self, batch, training=False) -> Objective:
        """Loss −L_d / N_d per document `[B]` at the current λ (no gradient is taken)."""
        del training
        counts = check_counts(batch["counts"], self.vocab_size)
        counts64 = tf.cast(counts, self.lda.dtype)
        # γ [B, K] and L_d [B]; conjugate.LDA exposes γ only through its local step.
        gamma, _, bounds = self.lda._local(counts64)
        alpha = tf.fill(tf.shape(gamma), tf.cast(self.lda.doc_topic_prior, self.lda.dtype))
        kl = tfd.kl_divergence(tfd.Dirichlet(gamma), tfd.Dirichlet(alpha))  # [B]
        lengths = tf.reduce_sum(counts, axis=-1)
        bounds, kl = tf.cast(bounds, tf.float32), tf.cast(kl, tf.float32)
        return Objective(loss=-bounds / tf.maximum(lengths, 1.0),
                         stats=document_stats(bounds, kl, lengths))

    def apply_update(self, batch) -> Objective:
        """One online-VB update of λ from the global batch; returns the objective before it.

        Called by the trainer in replica context in place of a gradient step.
        """
        objective = self.objective(batch)
        context = tf.distribute.get_replica_context()
        counts = check_counts(context.all_gather(check_counts(batch["counts"], self.vocab_size),
                                                 axis=0), self.vocab_size)  # [S, V]
        with tf.control_dependencies([objective.loss]):
            self.lda.online_vb(tf.cast(counts, self.lda.dtype), self.num_documents,
                               offset=self.offset, decay=self.decay)
        return objective

    def metrics_from_sums(self, sums):
        return document_metrics(sums)

    def topic_word(self) -> tf.Tensor:
        """Topic-word scores log λ `[K, V]`: softmax(log λ_k) = E_q[β_k]."""
        return tf.math.log(tf.convert_to_tensor(self.lda.topic_word))

    def evaluate_corpus(self, corpus, split: str, batch_size: int) -> dict[str, float]:
        return evaluate_topics(self.lda.top_words(DIVERSITY_WORDS).numpy(), corpus, split,
                               batch_size)

    def topic_proportions(self, counts: tf.Tensor) -> tf.Tensor:
        """E_q[θ_d] = γ_d / Σ_k γ_dk, the mean of q(θ_d) = Dir(γ_d) at the current λ: [B, K]."""
        gamma = self.lda.document_topics(tf.cast(check_counts(counts, self.vocab_size),
                                                 self.lda.dtype))
        return tf.cast(gamma / tf.reduce_sum(gamma, axis=-1, keepdims=True), tf.float32)

    def serving_signatures(self, batcher) -> dict:
        return {"topics": topics_signature(batcher, self.topic_proportions)}
