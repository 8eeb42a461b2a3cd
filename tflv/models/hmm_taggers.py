"""HMM taggers: `hmm` (Model 3), `neural_hmm` and `factorial_hmm`, one model family.

Each model is a chain of discrete states z_1..z_T over a sentence x_1..x_T (form `tokens`),

    p(x) = Σ_z p(z_1) Π_{t≥2} p(z_t | z_{t-1}, ·) Π_t p(x_t | z_t),

fitted by maximum likelihood, and its most probable states are read as induced word classes
(unsupervised part-of-speech tagging, Kim, Wiseman & Rush 2018, §5 and §7).

* `hmm` (`HMMTagger` with `HMMLogits`): free π, A, E. log p(x) by the forward algorithm
  (`tflv.distributions.HMM.log_prob`), trained either by gradient ascent on it, or by EM
  (`EMHMMTagger`): one *stepwise* EM update per trainer step (Liang & Klein 2009) through the
  trainer's `apply_update` hook. The E step takes the expected counts as the gradient of
  Σ_b log p(x_b) w.r.t. the log-parameters (`HMM.expected_counts`, Eisner 2016), summed over
  the global batch (all replicas), scaled to the training set of N sentences, ŝ = (N / B) s,
  and interpolated into running statistics,

      μ_k = (1 - η_k) μ_{k-1} + η_k ŝ_k,   η_k = (k + 1)^(-α),  k = 0, 1, …  (η_0 = 1),

  then the M step sets θ ∝ μ + λ (the MAP estimate under a Dirichlet(1 + λ) prior, λ the
  pseudo-count), i.e. logits = log(μ + λ). α ∈ (1/2, 1] makes it a Robbins–Monro scheme;
  α = 0 replaces μ by each batch's counts, so on one fixed batch it is batch EM (Baum–Welch),
  which never decreases log p(x) + λ Σ log θ.
* `neural_hmm` (`NeuralHMMTagger`): the same chain with scores from state embeddings, residual
  MLPs and optionally an LSTM over the words read so far (`NeuralHMMLogits`, Tran et al. 2016);
  trained by gradient ascent on the exact log p(x).
* `factorial_hmm` (`FactorialHMMTagger`): L chains of K states emitting jointly
  (`tflv.distributions.FactorialHMM`), trained on the exact log p(x) (product-state forward
  algorithm) or on the structured mean-field ELBO ≤ log p(x) (Ghahramani & Jordan 1997).

Loss per sentence: -log p(x) / T (or -ELBO / T); statistics `nll` = -log p(x) (mean field:
-ELBO, so its perplexity is an upper bound) and `tokens` = T, so the reported perplexity is
exp(Σ nll / Σ T) over every word of a split, each predicted once, with no end-of-sentence
symbol (form `tokens`): not comparable with PTB's usual stream perplexity, which counts <eos>.

`evaluate_corpus` decodes every sentence of a split with gold tags (form `tagged`: POS tags of
conll2000, true states of synthetic_hmm) and scores the states as clusters: many-to-one and
one-to-one accuracy and V-measure (`tflv.metrics`; Johnson 2007, Rosenberg & Hirschberg 2007).
HMMs decode by Viterbi, argmax_z p(z | x); the factorial HMM by the per-chain argmax of its
mean-field marginals, the cluster being the tuple (z^1..z^L) (K^L clusters).

#### References

Kim, Y., Wiseman, S. & Rush, A. M. (2018). A tutorial on deep latent variable models of
natural language. arXiv:1812.06834.

Liang, P. & Klein, D. (2009). Online EM for unsupervised models. NAACL.

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Tran, K., Bisk, Y., Vaswani, A., Marcu, D. & Knight, K. (2016). Unsupervised neural hidden
Markov models. Workshop on Structured Prediction for NLP.

Ghahramani, Z. & Jordan, M. I. (1997). Factorial hidden Markov models. Machine Learning 29.

Johnson, M. (2007). Why doesn't EM find good HMM POS-taggers? EMNLP.

Rosenberg, A. & Hirschberg, J. (2007). V-measure: a conditional entropy-based external
cluster evaluation measure. EMNLP.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from tflv import metrics, summaries
from tflv.distributions import HMM, FactorialHMM
from tflv.layers.hmm_parameterizations import HMMLogits, NeuralHMMLogits
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective, full_precision
from tflv.models.rnnlm import lm_metrics

FACTORIAL_INFERENCE = ("exact", "mean_field")


def state_tag_summaries(split: str, predicted: np.ndarray, gold: np.ndarray,
                        tag_names: Sequence[str]) -> None:
    """Writes how decoded states `[N]` line up with gold tags `[N]` (flat, real tokens only).

    `{split}/state_tag_confusion`: p(tag | state) as a heat map, a row per decoded state, grouped
    by its many-to-one tag (purest first), a column per tag id; `{split}/state_tags`: each state's
    many-to-one tag (named by `tag_names`, else its id), the share of the state's tokens that
    carry it and the state's token count.
    """
    table = metrics.contingency(predicted, gold)  # [C, T]
    states = np.flatnonzero(table.sum(axis=1))  # decoded at least once
    share = table[states] / table[states].sum(axis=1, keepdims=True)  # [S, T]
    tag, purity = share.argmax(axis=1), share.max(axis=1)  # [S]
    order = np.lexsort((-purity, tag))
    summaries.heatmap(f"{split}/state_tag_confusion", share[order])
    name = lambda t: tag_names[t] if t < len(tag_names) else str(t)
    summaries.text_table(f"{split}/state_tags", ["state", "tag", "share", "tokens"], [
        [int(states[i]), name(tag[i]), f"{purity[i]:.2f}", int(table[states[i]].sum())]
        for i in order])


class ChainTagger(LatentVariableModel):
    """What every HMM tagger shares: the objective, its metrics and tag evaluation.

    Subclasses implement `log_likelihood(tokens, mask, training) -> [B]` (log p(x) or a lower
    bound), `tags(tokens, mask) -> int32 [B, T]` and `marginals(tokens, mask)`, the posterior
    marginals of the states (`[B, T, K]`, or `[B, T, L, K]` for L chains).

    Batch (form `tokens`): `tokens` int32 [B, T], `mask` float32 [B, T] (a prefix per row).
    """

    input_form = "tokens"
    datasets = ("conll2000", "ptb", "synthetic_hmm")

    def log_likelihood(self, tokens, mask, training: bool = False) -> tf.Tensor:
        raise NotImplementedError

    def tags(self, tokens, mask) -> tf.Tensor:
        raise NotImplementedError

    def marginals(self, tokens, mask) -> tf.Tensor:
        raise NotImplementedError

    def objective(self, batch, training=False) -> Objective:
        mask = tf.cast(batch["mask"], tf.float32)  # [B, T]
        nll = -self.log_likelihood(batch["tokens"], mask, training=training)  # [B]
        tokens = tf.reduce_sum(mask, axis=1)  # [B]
        return Objective(loss=nll / tf.maximum(tokens, 1.0), stats={"nll": nll, "tokens": tokens})

    def metrics_from_sums(self, sums):
        return lm_metrics(sums)

    def evaluate_corpus(self, corpus, split: str, batch_size: int) -> dict[str, float]:
        """Many-to-one, one-to-one accuracy and V-measure of the decoded states on `split`.

        Empty for a corpus without gold tags (no `tagged` form, e.g. ptb). Also writes the
        state-by-tag summaries of `state_tag_summaries`.
        """
        if "tagged" not in corpus.forms:
            return {}
        decode = tf.function(self.tags, input_signature=[
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)])
        predicted, gold = [], []
        for batch in corpus.dataset(split, "tagged", batch_size):
            real = batch["mask"].numpy() > 0
            predicted.append(decode(batch["tokens"], batch["mask"]).numpy()[real])
            gold.append(batch["tags"].numpy()[real])
        predicted, gold = np.concatenate(predicted), np.concatenate(gold)
        tag_vocab = getattr(corpus, "pos_vocab", None)  # CoNLL-2000's; synthetic tags: ids
        names = tag_vocab.tokens if tag_vocab is not None else ()
        state_tag_summaries(split, predicted, gold, names)
        return {"many_to_one": metrics.many_to_one_accuracy(predicted, gold),
                "one_to_one": metrics.one_to_one_accuracy(predicted, gold),
                "v_measure": metrics.v_measure(predicted, gold)}

    def serving_signatures(self, batcher) -> dict:
        """`tag(text [N]) -> {tags int32 [N, T], lengths [N]}`, the decoded states, and
        `marginals(text [N]) -> {marginals [N, T, K] (or [N, T, L, K]), lengths [N]}`."""

        def signature(name, decode):
            return serving.text_signature(batcher, lambda batch: {
                name: decode(batch["tokens"], batch["mask"]), "lengths": batch["lengths"]})

        return {"tag": signature("tags", self.tags),
                "marginals": signature("marginals", self.marginals)}


@keras.saving.register_keras_serializable(package="tflv")
class HMMTagger(ChainTagger):
    """An HMM whose logits come from a layer: free (`hmm`) or neural (`neural_hmm`).

    Args:
      logits: an `HMMLogits` (one chain) or `NeuralHMMLogits` layer, or its serialized config.
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """`hmm`'s hyperparameters (`HMMTagger.from_corpus(corpus, config)`)."""
        num_states: int = cfg.NUM_STATES()
        hmm_training: str = cfg.hparam(
            "gradient", "Gradient ascent on log p(x), or stepwise EM (one update per step, "
            "posteriors by autodiff).", choices=("gradient", "em"))
        em_decay: float = cfg.hparam(0.7, "With hmm_training em: step sizes (k+1)^-decay (0: "
                                     "each batch's counts replace the statistics; batch EM on a "
                                     "full batch).", at_least=0)
        em_pseudo_count: float = cfg.hparam(0.01, "With hmm_training em: pseudo-count of the M "
                                            "step.", at_least=0)

    def __init__(self, logits: HMMLogits | NeuralHMMLogits | dict, **kwargs):
        super().__init__(**kwargs)
        if isinstance(logits, dict):
            logits = keras.saving.deserialize_keras_object(logits)
        if not isinstance(logits, (HMMLogits, NeuralHMMLogits)) or getattr(logits, "num_chains", 0):
            raise ValueError(f"logits must be a one-chain HMMLogits or a NeuralHMMLogits layer, "
                             f"got {logits!r}")
        self.logits = logits

    @classmethod
    def _from_config(cls, corpus, config) -> "HMMTagger":
        logits = HMMLogits(config.num_states, corpus.info["vocab_size"], name="logits")
        if config.hmm_training == "em":
            return EMHMMTagger(logits, num_examples=corpus.num_examples("train"),
                               em_decay=config.em_decay, pseudo_count=config.em_pseudo_count)
        return cls(logits)

    def distribution(self, tokens, training: bool = False) -> tuple[HMM, tf.Tensor | None]:
        """The HMM of a batch and the x its methods take (None: scores are per position).

        Shared transitions [K, K] give `HMM(logits)` over x [B, T]; per-position transitions
        [B, T-1, K, K] give `HMM.from_log_potentials` with the normalised log-probabilities
        (rows of A_t and of E sum to one, so log Z is log p(x)).
        """
        # float32 under mixed precision: the softmaxes and the forward recursion are.
        initial, transition, emission = full_precision(self.logits(tokens, training=training))
        if transition.shape.rank == 2:
            return HMM(initial, transition, emission), tokens
        log_emission = tf.gather(tf.nn.log_softmax(emission), tokens, axis=1)  # [K, B, T]
        rows = tf.shape(tokens)[0]
        log_initial = tf.broadcast_to(tf.nn.log_softmax(initial), [rows, tf.shape(initial)[0]])
        return HMM.from_log_potentials(log_initial, tf.nn.log_softmax(transition),
                                       tf.transpose(log_emission, [1, 2, 0]),
                                       per_step_transitions=True), None

    def log_likelihood(self, tokens, mask, training: bool = False) -> tf.Tensor:
        hmm, x = self.distribution(tokens, training)
        return hmm.log_prob(x, mask)  # [B]

    def tags(self, tokens, mask) -> tf.Tensor:
        hmm, x = self.distribution(tokens)
        return hmm.viterbi(x, mask)  # [B, T]

    def marginals(self, tokens, mask) -> tf.Tensor:
        """p(z_t = k | x): [B, T, K] (forward algorithm and its gradient)."""
        hmm, x = self.distribution(tokens)
        return hmm.posterior(x, mask).unary

    def get_config(self):
        return {**super().get_config(), "logits": keras.saving.serialize_keras_object(self.logits)}


@keras.saving.register_keras_serializable(package="tflv")
class EMHMMTagger(HMMTagger):
    """`hmm` trained by stepwise EM (module docstring) in the trainer's `apply_update` hook.

    Args:
      logits: a one-chain `HMMLogits` (free parameters, which the M step overwrites).
      num_examples: N, the number of training sentences the batch counts are scaled to.
      em_decay: α ≥ 0 of the step sizes η_k = (k + 1)^(-α).
      pseudo_count: λ ≥ 0 added to every expected count in the M step (λ > 0 keeps every
        probability positive).
    """

    closed_form_update = True

    def __init__(self, logits: HMMLogits | dict, num_examples: int, em_decay: float = 0.7,
                 pseudo_count: float = 0.01, **kwargs):
        super().__init__(logits, **kwargs)
        if not isinstance(self.logits, HMMLogits):
            raise ValueError("EM needs free logits (HMMLogits): a neural HMM has no closed-form "
                             "M step")
        if num_examples < 1 or em_decay < 0 or pseudo_count < 0:
            raise ValueError(f"need num_examples >= 1, em_decay >= 0, pseudo_count >= 0; got "
                             f"{num_examples}, {em_decay}, {pseudo_count}")
        self.num_examples, self.em_decay, self.pseudo_count = num_examples, em_decay, pseudo_count
        self.em_steps = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                        trainable=False, name="em_steps",
                                        aggregation="only_first_replica")
        # μ: attributes, not a list, so that tf.train.Checkpoint sees them.
        self.initial_counts, self.transition_counts, self.emission_counts = (
            self.add_weight(shape=v.shape, initializer="zeros", trainable=False,
                            name=v.name.replace("_logits", "_counts"),
                            aggregation="only_first_replica")
            for v in self.logits.logits)

    @property
    def statistics(self) -> tuple:
        """The running expected counts μ (initial [K], transition [K, K], emission [K, V])."""
        return self.initial_counts, self.transition_counts, self.emission_counts

    def apply_update(self, batch) -> Objective:
        """One stepwise EM update from the global batch; returns the objective before it.

        Called by the trainer in replica context in place of a gradient step.
        """
        objective = self.objective(batch)
        hmm, x = self.distribution(batch["tokens"])
        counts = hmm.expected_counts(x, batch["mask"])  # ([K], [K, K], [K, V]) summed over rows
        rows = tf.cast(tf.shape(x)[0], counts[0].dtype)
        context = tf.distribute.get_replica_context()
        *counts, rows = context.all_reduce(tf.distribute.ReduceOp.SUM, [*counts, rows])
        step_size = tf.pow(tf.cast(self.em_steps, rows.dtype) + 1.0, -self.em_decay)
        scale = self.num_examples / rows
        with tf.control_dependencies([objective.loss]):
            updated = []
            for statistic, count in zip(self.statistics, counts):
                statistic.assign((1.0 - step_size) * statistic + step_size * scale * count)
                updated.append(tf.math.log(tf.convert_to_tensor(statistic) + self.pseudo_count))
            self.logits.assign(*updated)
            self.em_steps.assign_add(1)
        return objective

    def get_config(self):
        return {**super().get_config(), "num_examples": self.num_examples,
                "em_decay": self.em_decay, "pseudo_count": self.pseudo_count}


@keras.saving.register_keras_serializable(package="tflv")
class NeuralHMMTagger(HMMTagger):
    """`neural_hmm`: an `HMMTagger` over `NeuralHMMLogits` (Tran et al. 2016), by gradient."""

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """`neural_hmm`'s hyperparameters (`NeuralHMMTagger.from_corpus(corpus, config)`)."""
        num_states: int = cfg.NUM_STATES()
        embed_dim: int = cfg.EMBED_DIM()
        hidden_dim: int = cfg.HIDDEN_DIM()
        neural_transitions: str = cfg.hparam(
            "mlp", "Transitions from state embeddings, or also from an LSTM over the words so "
            "far.", choices=("mlp", "lstm"))

    @classmethod
    def _from_config(cls, corpus, config) -> "NeuralHMMTagger":
        return cls(NeuralHMMLogits(config.num_states, corpus.info["vocab_size"],
                                   embed_dim=config.embed_dim, hidden_dim=config.hidden_dim,
                                   transitions=config.neural_transitions, name="logits"))


@keras.saving.register_keras_serializable(package="tflv")
class FactorialHMMTagger(ChainTagger):
    """`factorial_hmm`: L chains of K states with summed emission logits.

    Args:
      vocab_size: V.
      num_chains: L.
      num_states: K per chain (the product state space has K^L states).
      inference: "exact" (log p(x) over the product states) or "mean_field" (the ELBO).
      mean_field_iterations: coordinate-ascent sweeps of mean field (its ELBO and the tags).
      seed: initialiser seed.
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """`factorial_hmm`'s hyperparameters (`FactorialHMMTagger.from_corpus(corpus, config)`)."""
        num_states: int = cfg.NUM_STATES()
        num_chains: int = cfg.hparam(2, "Markov chains L.", at_least=1)
        factorial_inference: str = cfg.hparam(
            "exact", "Exact log p(x) over K^L product states, or the structured mean-field "
            "ELBO.", choices=FACTORIAL_INFERENCE)
        mean_field_iterations: int = cfg.hparam(5, "Mean-field sweeps.", at_least=1)

    def __init__(self, vocab_size: int, num_chains: int = 2, num_states: int = 4,
                 inference: str = "exact", mean_field_iterations: int = 5,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if inference not in FACTORIAL_INFERENCE:
            raise ValueError(f"inference must be one of {FACTORIAL_INFERENCE}, got {inference!r}")
        if num_chains < 1 or mean_field_iterations < 1:
            raise ValueError(f"num_chains and mean_field_iterations must be >= 1, got "
                             f"{num_chains} and {mean_field_iterations}")
        self.config = dict(vocab_size=vocab_size, num_chains=num_chains, num_states=num_states,
                           inference=inference, mean_field_iterations=mean_field_iterations,
                           seed=seed)
        self.logits = HMMLogits(num_states, vocab_size, num_chains=num_chains, seed=seed,
                                name="logits")

    @classmethod
    def _from_config(cls, corpus, config) -> "FactorialHMMTagger":
        return cls(corpus.info["vocab_size"], num_chains=config.num_chains,
                   num_states=config.num_states, inference=config.factorial_inference,
                   mean_field_iterations=config.mean_field_iterations)

    def distribution(self, tokens) -> FactorialHMM:
        return FactorialHMM(*full_precision(self.logits(tokens)))  # float32 (mixed precision)

    def log_likelihood(self, tokens, mask, training: bool = False) -> tf.Tensor:
        fhmm = self.distribution(tokens)
        if self.config["inference"] == "exact":
            return fhmm.log_prob(tokens, mask)  # [B]
        return fhmm.elbo(tokens, mask, self.config["mean_field_iterations"])  # [B]

    def marginals(self, tokens, mask) -> tf.Tensor:
        """The structured mean-field marginals q(z^l_t = k) ≈ p(z^l_t = k | x): [B, T, L, K].

        Mean field, as for `tags`, whichever `inference` trained the model.
        """
        return self.distribution(tokens).mean_field(
            tokens, mask, self.config["mean_field_iterations"]).marginals

    def tags(self, tokens, mask) -> tf.Tensor:
        """Cluster Σ_l argmax_k q(z^l_t = k) K^(L-1-l) of each word: int32 [B, T], 0 at padding."""
        states = tf.argmax(self.marginals(tokens, mask), axis=-1,
                           output_type=tf.int32)  # [B, T, L]
        num_chains, num_states = self.config["num_chains"], self.config["num_states"]
        place = num_states ** tf.range(num_chains - 1, -1, -1)  # [L]
        clusters = tf.reduce_sum(states * place, axis=-1)
        return tf.where(tf.cast(mask, tf.bool), clusters, tf.zeros_like(clusters))

    def get_config(self):
        return {**super().get_config(), **self.config}
