"""Attentional encoder–decoder p(y | x): soft, latent or copy attention.

One model, the attention mode a parameter. A bidirectional LSTM encodes the source x into memory
m_1..m_S; an LSTM over the target prefix gives h_t = LSTM(h_{t-1}, e(y_{t-1})) (no input feeding,
so the attention choice z_t does not change later states and can be marginalised per token);
`tflv.layers.attention.Attention` gives α_ts = p(z_t = s | h_t, m). With o(h, c) = W tanh(U [h ; c]) + b:

- `soft` (Bahdanau et al. 2015): p(y_t | ·) = softmax(o(h_t, Σ_s α_ts m_s)).
- `latent` (Deng et al. 2018): z_t is a categorical latent variable over source positions,
      log p(y_t | ·) = log Σ_s α_ts softmax(o(h_t, m_s))[y_t],
  always evaluated by enumerating the S positions, and trained as the `estimator` object
  (`tflv.vi.estimators.CategoricalEstimator`) says:
  - `Enumeration()`: the exact marginal above (its value and gradient), S output
    softmaxes per token.
  - a sampled estimator: the per-token ELBO with an inference network q(z_t | x, y) (the
    attention layer queried by a bidirectional LSTM over the whole target),
        log p(y_t | ·) ≥ E_q[f(z_t)] − KL(q(z_t) ‖ α_t),
        f(z) = log softmax(o(h_t, Σ_s z_s m_s))[y_t],
    the KL between categoricals in closed form, E_q by the estimator's surrogate over K samples
    per token. The learning signal f reads the code z as a mixture of memory rows, so one-hot
    and relaxed codes are read alike (one-hot z = e_s gives f = log p(y_t | z_t = s)):
    - `ScoreFunction(K, baseline)` (REINFORCE, as Deng et al.'s variational attention): z^k ~ q,
          ∇ ≈ 1/K Σ_k [∇f(z^k) + (f(z^k) − b_k) ∇ log q(z^k)],
      unbiased, with the control variate b_k = 1/(K−1) Σ_{j≠k} f(z^j) (`"leave_one_out"`,
      K ≥ 2), a learned b(x, y) from [h_t ; q's query] (`"learned"`, fitted by regression onto
      f) or none (`"none"`).
    - `GumbelSoftmax(K, τ, straight_through)`: z̃^k = softmax((log q + g^k)/τ), g^k ~ Gumbel,
          ∇ ≈ 1/K Σ_k ∇f(z̃^k),
      reparameterized and low-variance, biased for τ > 0 (the decoder reads the blend
      Σ_s z̃_s m_s, which no discrete z gives); straight-through evaluates f at the one-hot
      argmax of z̃ and differentiates through z̃.
    The samples' stateless seeds are drawn from the model's `seed_generator`, a new one per
    training step. Evaluation reports the exact marginal and the exact ELBO
    Σ_s q(s) log p(y_t | z_t = s) − KL.
  The names before estimators were objects still build the same models: `latent_exact` is
  `latent` with `Enumeration()`, `latent_elbo` with `ScoreFunction(num_samples (2),
  "leave_one_out")`.
- `copy` (Gu et al. 2016; Gulcehre et al. 2016): the soft model's p_gen mixed with copying a
  source word through a per-token switch, marginalised exactly over the batch's extended
  vocabulary (`tflv.layers.copy`).

Per-example loss: NLL (or negative ELBO) per target token; reported: per-token `nll`/`ppl` over
the split (exact marginal), and, from `evaluate_corpus`, tokenized BLEU of greedy (or beam)
translations (`tflv.bleu`) on the split and, for `test`, also on test_2017_flickr and
test_2017_mscoco.

#### References
- Bahdanau, Cho & Bengio (2015). Neural Machine Translation by Jointly Learning to Align and
  Translate. ICLR.
- Deng, Kim, Chiu, Guo & Rush (2018). Latent Alignment and Variational Attention. NeurIPS.
- Gu, Lu, Li & Li (2016). Incorporating Copying Mechanism in Sequence-to-Sequence Learning. ACL.
- Gulcehre, Ahn, Nallapati, Zhou & Bengio (2016). Pointing the Unknown Words. ACL.
- Kim, Wiseman & Rush (2018). A Tutorial on Deep Latent Variable Models of Natural Language.
"""
from __future__ import annotations

import dataclasses
import keras
import numpy as np
import tensorflow as tf

from tflv import decoding
from tflv.bleu import corpus_bleu
from tflv.layers import copy as copy_lib
from tflv.layers.attention import Attention, soft_context
from tflv.layers.encoders import RNNEncoder
from tflv.layers.heads import BaselineHead
from tflv.layers.lstm import LSTM
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective, full_precision
from tflv.models.rnnlm import lm_metrics
from tflv.models.unigram import bias_initializer, log_frequencies, token_counts
from tflv.vi import estimators

ATTENTION_MODES = ("soft", "latent", "copy")
# The latent modes' names before estimators were objects → `LatentAttention.Config`'s
# `attention_training` value they stand for (`legacy_estimator`).
LEGACY_LATENT_MODES = {"latent_exact": "exact", "latent_elbo": "elbo"}
BLEU_EXTRA_SPLITS = ("test_2017_flickr", "test_2017_mscoco")
UNK_ID, BOS_ID, EOS_ID = 1, 2, 3


def legacy_estimator(attention_training: str, num_samples: int = 2
                     ) -> estimators.CategoricalEstimator:
    """The estimator of latent attention's older names: `"exact"` (`latent_exact`) trains by
    enumeration, `"elbo"` (`latent_elbo`) by REINFORCE with `num_samples` ≥ 2 samples and the
    leave-one-out baseline.

    >>> legacy_estimator("elbo", 3)
    ScoreFunction(num_samples=3, baseline='leave_one_out')
    """
    if attention_training == "exact":
        return estimators.Enumeration()
    if attention_training == "elbo":
        return estimators.ScoreFunction(num_samples, "leave_one_out")
    raise ValueError(f"attention_training must be 'exact' or 'elbo', got {attention_training!r}")


@keras.saving.register_keras_serializable(package="tflv")
class EncoderDecoder(LatentVariableModel):
    """Bidirectional-LSTM encoder, LSTM decoder, attention of the given mode.

    Args:
      source_vocab_size, target_vocab_size: V_src, V.
      attention: one of `ATTENTION_MODES`, or `"latent_exact"` / `"latent_elbo"` (`latent` with
        `Enumeration()` / `ScoreFunction(num_samples, "leave_one_out")`).
      embed_dim, hidden_dim: E and H (the encoder has H per direction).
      dropout: on embeddings and decoder states (training only).
      num_samples: samples of z_t per token of a sampled estimator given by name (default: the
        estimator's), and of `latent_elbo` (default 2).
      source_to_target: for `copy`, int [V_src] target id of each source word (-1: none).
      beam_size: 1 decodes greedily, more by beam search; alpha: its length-penalty exponent.
      max_decode_length: most tokens a translation may have.
      bleu_max_examples: decode at most this many sentences per split for BLEU (0: all).
      output_bias: float [V], the output projection's initial bias (`from_corpus` passes the
        training targets' log unigram frequencies, `tflv.models.unigram`; None: zeros). A
        starting value, not configuration: a restored model takes the bias from its weights.
      estimator: for `latent` only: a `tflv.vi.estimators.CategoricalEstimator` (default
        `Enumeration()`) or its name, built with `num_samples` and the next three arguments.
      baseline, temperature, straight_through: options of an estimator given by name
        (`tflv.vi.estimators.from_name`).

    >>> from tflv.vi.estimators import ScoreFunction
    >>> model = EncoderDecoder(9, 8, attention="latent", embed_dim=4, hidden_dim=4,
    ...                        estimator=ScoreFunction(num_samples=2, baseline="leave_one_out"))
    >>> model.estimator.sampled, model.get_config()["estimator"]
    (True, 'score_function')
    >>> EncoderDecoder(9, 8, attention="latent_exact").estimator
    Enumeration()

    Batch (form `parallel`): `source` int [B, S], `source_mask` [B, S], `target_inputs`,
    `target_targets` int [B, T], `target_mask` [B, T].
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """The encoder–decoder's hyperparameters (`EncoderDecoder.from_corpus(corpus, config)`)."""
        embed_dim: int = cfg.EMBED_DIM()
        hidden_dim: int = cfg.HIDDEN_DIM()
        dropout: float = cfg.DROPOUT()
        beam_size: int = cfg.hparam(1, "Beam size for BLEU (1: greedy).", at_least=1)
        length_alpha: float = cfg.hparam(0.0, "Beam search length-penalty exponent (Wu et al. "
                                         "2016).")
        bleu_max_examples: int = cfg.hparam(0, "Translate at most this many sentences per split "
                                            "for BLEU (0: all).", at_least=0)

    input_form = "parallel"
    datasets = ("multi30k", "e2e")

    def __init__(self, source_vocab_size: int, target_vocab_size: int, attention: str = "soft",
                 embed_dim: int = 256, hidden_dim: int = 256, dropout: float = 0.0,
                 num_samples: int | None = None, source_to_target: list[int] | None = None,
                 beam_size: int = 1, alpha: float = 0.0, max_decode_length: int = 60,
                 bleu_max_examples: int = 0, output_bias=None,
                 estimator: str | estimators.CategoricalEstimator | None = None,
                 baseline: str = "none", temperature: float = 1.0,
                 straight_through: bool = False, **kwargs):
        super().__init__(**kwargs)
        estimator = self._estimator(attention, estimator, num_samples, baseline, temperature,
                                    straight_through)
        attention = "latent" if attention in LEGACY_LATENT_MODES else attention
        if attention == "copy" and source_to_target is None:
            raise ValueError("copy attention needs source_to_target (the target id of each "
                             "source word)")
        if attention == "copy" and len(source_to_target) != source_vocab_size:
            raise ValueError(f"source_to_target has {len(source_to_target)} entries, expected "
                             f"source_vocab_size={source_vocab_size}")
        self.estimator = estimator  # None unless latent
        # The estimator serialised by name and options (`get_config`), as MixtureLM's.
        self.config = dict(source_vocab_size=source_vocab_size,
                           target_vocab_size=target_vocab_size, attention=attention,
                           embed_dim=embed_dim, hidden_dim=hidden_dim, dropout=dropout,
                           **(estimators.options(estimator) if estimator is not None
                              else dict(estimator=None, num_samples=num_samples)),
                           source_to_target=None if source_to_target is None
                           else [int(i) for i in source_to_target],
                           beam_size=beam_size, alpha=alpha, max_decode_length=max_decode_length,
                           bleu_max_examples=bleu_max_examples)
        self.mode = attention
        self.vocab_size = target_vocab_size
        self.encoder = RNNEncoder(source_vocab_size, embed_dim, hidden_dim, bidirectional=True,
                                  return_states=True, name="encoder")
        self.bridge = keras.layers.Dense(hidden_dim, activation="tanh", name="bridge")
        self.embedding = keras.layers.Embedding(target_vocab_size, embed_dim, name="embedding")
        self.lstm = LSTM(hidden_dim, return_sequences=True, return_state=True,
                         name="decoder_lstm")
        self.attention = Attention(hidden_dim, name="attention")
        self.combine = keras.layers.Dense(hidden_dim, activation="tanh", name="combine")
        self.projection = keras.layers.Dense(
            target_vocab_size, name="projection", bias_initializer=bias_initializer(
                output_bias, target_vocab_size, "target_vocab_size"))
        self.drop = keras.layers.Dropout(dropout)
        if attention == "copy":
            self.gate = keras.layers.Dense(1, name="copy_gate")
            self.source_to_target = tf.constant(self.config["source_to_target"], tf.int32)
        if estimator is not None and estimator.sampled:  # the inference network q(z_t | x, y)
            self.posterior_encoder = RNNEncoder(target_vocab_size, embed_dim, hidden_dim,
                                                bidirectional=True, return_states=True,
                                                name="posterior_encoder")
            self.posterior_attention = Attention(hidden_dim, name="posterior_attention")
            # Seeds of the samples (stateless seeds drawn from it, one per training step).
            self.seed_generator = keras.random.SeedGenerator(0)
            if self.config["baseline"] == "learned":  # b(x, y) from [h_t ; q's query]
                self.baseline_head = BaselineHead((), name="baseline")
                self.baseline_head.build((None, 3 * hidden_dim))

    @staticmethod
    def _estimator(attention, estimator, num_samples, baseline, temperature, straight_through
                   ) -> estimators.CategoricalEstimator | None:
        """The estimator object of the constructor's arguments (None for soft and copy)."""
        if attention not in ATTENTION_MODES and attention not in LEGACY_LATENT_MODES:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_MODES)} (or the "
                             f"older {', '.join(LEGACY_LATENT_MODES)}), got {attention!r}")
        if attention in LEGACY_LATENT_MODES:
            if estimator is not None:
                raise ValueError(f"attention={attention!r} names its estimator; give "
                                 f"attention='latent' with estimator={estimator!r} instead")
            return legacy_estimator(LEGACY_LATENT_MODES[attention],
                                    2 if num_samples is None else num_samples)
        if attention != "latent":
            if estimator is not None:
                raise ValueError(f"estimator is for attention='latent' only, got attention="
                                 f"{attention!r} with estimator={estimator!r}")
            return None
        if estimator is None:
            return estimators.Enumeration()
        if isinstance(estimator, str):
            sampled = {} if num_samples is None else {"num_samples": num_samples}
            return estimators.from_name(estimator, baseline=baseline, temperature=temperature,
                                        straight_through=straight_through, **sampled)
        if not isinstance(estimator, estimators.CategoricalEstimator):
            raise ValueError(f"estimator must be a tflv.vi.estimators.CategoricalEstimator or "
                             f"one of {', '.join(estimators.ESTIMATORS)}, got {estimator!r}")
        return estimator

    @classmethod
    def _from_config(cls, corpus, config, attention: str = "soft",
                     estimator: estimators.CategoricalEstimator | None = None
                     ) -> "EncoderDecoder":
        source_to_target = None
        if attention == "copy":
            index = {token: i for i, token in enumerate(corpus.target_vocab.tokens)}
            source_to_target = copy_lib.source_to_target_ids(corpus.source_vocab.tokens,
                                                             index).numpy().tolist()
        return cls(source_vocab_size=corpus.info["source_vocab_size"],
                   target_vocab_size=corpus.info["target_vocab_size"], attention=attention,
                   embed_dim=config.embed_dim, hidden_dim=config.hidden_dim,
                   dropout=config.dropout, estimator=estimator,
                   source_to_target=source_to_target, beam_size=config.beam_size,
                   alpha=config.length_alpha, bleu_max_examples=config.bleu_max_examples,
                   output_bias=log_frequencies(token_counts(
                       corpus.dataset("train", cls.input_form, 1024), corpus.info[
                           "target_vocab_size"], "target_targets", "target_mask")))

    # -- the pieces -------------------------------------------------------------------------

    def encode(self, source, source_mask, training=False) -> dict[str, tf.Tensor]:
        """Source → decoder start state and the per-row constants a decoding step needs."""
        features, memory = self.encoder(source, mask=tf.cast(source_mask, tf.bool))
        h0 = self.bridge(features)  # [B, H]
        context = {"memory": self.drop(memory, training=training),  # [B, S, 2H]
                   "source_mask": tf.cast(source_mask, tf.float32)}
        if self.mode == "copy":
            context["extended_ids"] = copy_lib.extended_source_ids(
                source, self.source_to_target, self.vocab_size)
        return {"h": h0, "c": tf.zeros_like(h0), **context}

    def decode_states(self, inputs, state, target_mask=None, training=False):
        """LSTM over target inputs int [B, T] → (h [B, T, H], embedded [B, T, E], state)."""
        inputs = tf.where(inputs < self.vocab_size, inputs, UNK_ID)  # copied words enter as <unk>
        embedded = self.drop(self.embedding(inputs), training=training)
        mask = None if target_mask is None else tf.cast(target_mask, tf.bool)
        h, h_last, c_last = self.lstm(embedded, mask=mask, initial_state=[state["h"], state["c"]],
                                      training=training)
        return self.drop(h, training=training), embedded, {**state, "h": h_last, "c": c_last}

    def output_logits(self, h, values):
        """o(h, c): h [..., H], values [..., D] broadcastable → [..., V] (float32: the softmaxes
        over V are, under a mixed-precision policy too)."""
        batch_shape = tf.broadcast_dynamic_shape(tf.shape(h)[:-1], tf.shape(values)[:-1])
        h = tf.broadcast_to(h, tf.concat([batch_shape, tf.shape(h)[-1:]], 0))
        values = tf.broadcast_to(values, tf.concat([batch_shape, tf.shape(values)[-1:]], 0))
        return full_precision(self.projection(self.combine(tf.concat([h, values], axis=-1))))

    def log_alignment(self, h, state):
        """log p(z_t = s): [B, T, S]."""
        return self.attention((h, state["memory"], state["source_mask"]))

    def next_word_log_probs(self, h, embedded, state):
        """log p(y_t = v | y_<t, x) over the (extended) vocabulary: [B, T, V] or [B, T, V + S]."""
        log_alignment = self.log_alignment(h, state)
        memory = state["memory"]
        if self.mode == "latent":
            per_position = tf.nn.log_softmax(self.output_logits(
                h[:, :, None, :], memory[:, None, :, :]))  # [B, T, S, V]
            return tf.reduce_logsumexp(log_alignment[..., None] + per_position, axis=2)
        context = soft_context(log_alignment, memory)  # [B, T, 2H]
        generate = tf.nn.log_softmax(self.output_logits(h, context))  # [B, T, V]
        if self.mode == "soft":
            return generate
        return copy_lib.copy_distribution(generate, log_alignment, state["extended_ids"],
                                          self._gate_logits(h, context, embedded))

    def _gate_logits(self, h, context, embedded):
        gate = self.gate(tf.concat([h, context, embedded], axis=-1))[..., 0]  # [B, T]
        return full_precision(gate)

    # -- the objective ----------------------------------------------------------------------

    def objective(self, batch, training=False) -> Objective:
        mask = tf.cast(batch["target_mask"], tf.float32)  # [B, T]
        targets = tf.cast(batch["target_targets"], tf.int32)
        state = self.encode(batch["source"], batch["source_mask"], training=training)
        h, embedded, _ = self.decode_states(batch["target_inputs"], state, mask, training)
        tokens = tf.reduce_sum(mask, axis=1)  # [B]
        stats = {"tokens": tokens}
        total = lambda per_token: tf.reduce_sum(per_token * mask, axis=1)  # [B, T] → [B]
        if self.mode == "copy":
            log_alignment = self.log_alignment(h, state)
            context = soft_context(log_alignment, state["memory"])
            generate = tf.nn.log_softmax(self.output_logits(h, context))
            log_prob, log_copied = copy_lib.copy_log_prob(
                targets, generate, log_alignment, state["extended_ids"],
                self._gate_logits(h, context, embedded))  # [B, T] each
            stats["copied"] = total(tf.exp(log_copied))
        elif self.mode == "latent" and self.estimator.sampled and training:
            elbo, kl = self.token_elbo(h, state, batch, self._sample_seed())  # [B, T] each
            stats.update(nll=-total(elbo), kl=total(kl))
            return Objective(loss=-total(elbo) / tf.maximum(tokens, 1.0), stats=stats)
        elif self.mode == "latent":
            log_prior = self.log_alignment(h, state)  # [B, T, S]
            log_lik = self.position_log_likelihood(h, state, targets)  # [B, T, S]
            log_prob = tf.reduce_logsumexp(log_prior + log_lik, axis=-1)  # exact marginal
            if self.estimator.sampled:  # the exact ELBO of q: Σ_s q(s) log p(y_t | s) − KL
                log_q = self.posterior_log_alignment(batch, state)
                kl = categorical_kl(log_q, log_prior)
                elbo = tf.reduce_sum(tf.exp(log_q) * log_lik, axis=-1) - kl
                stats.update(elbo=total(elbo), kl=total(kl))
        else:
            log_prob = tf.gather(self.next_word_log_probs(h, embedded, state), targets,
                                 batch_dims=2)  # [B, T]
        nll = -total(log_prob)  # [B]
        stats["nll"] = nll
        return Objective(loss=nll / tf.maximum(tokens, 1.0), stats=stats)

    def position_log_likelihood(self, h, state, targets):
        """log p(y_t | z_t = s) = log softmax(o(h_t, m_s))[y_t] for every position: [B, T, S]."""
        per_position = tf.nn.log_softmax(self.output_logits(
            h[:, :, None, :], state["memory"][:, None, :, :]))  # [B, T, S, V]
        s = tf.shape(per_position)[2]
        return tf.gather(per_position, tf.repeat(targets[:, :, None], s, axis=2),
                         batch_dims=3)

    def posterior_log_alignment(self, batch, state):
        """log q(z_t = s | x, y): a bidirectional LSTM over y_1..y_T queries the source [B,T,S]."""
        return self._posterior(batch, state)[0]

    def _posterior(self, batch, state):
        """(log q(z_t = s | x, y) [B, T, S], the queries [B, T, 2H])."""
        _, queries = self.posterior_encoder(batch["target_targets"],
                                            mask=tf.cast(batch["target_mask"], tf.bool))
        return self.posterior_attention((queries, state["memory"], state["source_mask"])), queries

    def _sample_seed(self) -> tf.Tensor:
        """A stateless int32 [2] seed, a new one at each call (drawn from `seed_generator`)."""
        return keras.random.randint([2], 0, 2 ** 31 - 1, seed=self.seed_generator)

    def token_elbo(self, h, state, batch, seed):
        """The estimator's surrogate of the per-token ELBO and KL(q ‖ p), both [B, T].

        Value: the Monte Carlo estimate of E_q[log p(y_t | z_t)] − KL(q(z_t | x, y) ‖ α_t);
        gradient: the estimator's. The learning signal of codes z [N, B·T, S] (one-hot or
        relaxed) is log softmax(o(h_t, Σ_s z_s m_s))[y_t], [N, B·T].

        Args:
          h: decoder states [B, T, H]; state: `encode`'s; batch: the `parallel` batch.
          seed: stateless int32 [2] seed of the samples.
        """
        targets = tf.cast(batch["target_targets"], tf.int32)
        log_prior = self.log_alignment(h, state)  # [B, T, S]
        log_q, queries = self._posterior(batch, state)  # [B, T, S], [B, T, 2H]
        kl = categorical_kl(log_q, log_prior)  # [B, T]
        memory = state["memory"]  # [B, S, 2H]
        b, t, s = tf.unstack(tf.shape(log_q))

        def log_likelihood(codes):  # [N, B·T, S] → [N, B·T]
            n = tf.shape(codes)[0]
            codes = tf.reshape(tf.cast(codes, memory.dtype), [n, b, t, s])
            chosen = tf.einsum("nbts,bsd->nbtd", codes, memory)  # Σ_s z_s m_s
            log_probs = tf.nn.log_softmax(self.output_logits(h[None], chosen))  # [N, B, T, V]
            picked = tf.gather(log_probs, tf.broadcast_to(targets[None], [n, b, t]),
                               batch_dims=3)
            return tf.reshape(picked, [n, -1])

        learned = None
        if self.config["baseline"] == "learned":  # b(x, y): no gradient into the networks
            features = tf.stop_gradient(tf.concat([h, tf.cast(queries, h.dtype)], axis=-1))
            learned = tf.cast(self.baseline_head(tf.reshape(features, [b * t, -1])),
                              log_q.dtype)  # [B·T]
        expected = self.estimator.surrogate(tf.reshape(log_q, [-1, s]), log_likelihood,
                                            seed=seed, learned_baseline=learned)  # [B·T]
        return tf.reshape(expected, [b, t]) - kl, kl

    def metrics_from_sums(self, sums):
        metrics = lm_metrics(sums)
        tokens = max(sums["tokens"], 1.0)
        if "copied" in sums:
            metrics["copied_share"] = sums["copied"] / tokens
        if "elbo" in sums:
            metrics["elbo_per_token"] = sums["elbo"] / tokens
        if "kl" in sums:
            metrics["kl_per_token"] = sums["kl"] / tokens
        return metrics

    # -- translation ------------------------------------------------------------------------

    def translate(self, source, source_mask) -> tf.Tensor:
        """Greedy (beam_size 1) or beam-search translations: int32 [B, max_decode_length]."""
        state = self.encode(source, source_mask)

        def step_fn(tokens, state):
            h, embedded, state = self.decode_states(tokens[:, None], state)
            return self.next_word_log_probs(h, embedded, state)[:, 0], state

        start = tf.fill([tf.shape(source)[0]], BOS_ID)
        length = self.config["max_decode_length"]
        if self.config["beam_size"] == 1:
            ids, _ = decoding.greedy(step_fn, state, start, length, EOS_ID)
        else:
            ids, _ = decoding.beam_search(step_fn, state, start, length, EOS_ID,
                                          self.config["beam_size"], self.config["alpha"])
        return ids

    def ids_to_text(self, ids: np.ndarray, source: np.ndarray, corpus) -> list[str]:
        """Token ids (extended ids name source positions) up to `<eos>` → tokenized strings."""
        target_tokens, source_tokens = corpus.target_vocab.tokens, corpus.source_vocab.tokens
        lines = []
        for row, src in zip(ids, source):
            words = []
            for i in row:
                if i == EOS_ID or i == 0:
                    break
                words.append(target_tokens[i] if i < self.vocab_size
                             else source_tokens[src[i - self.vocab_size]])
            lines.append(" ".join(words))
        return lines

    def serving_signatures(self, batcher) -> dict:
        """`translate(text [N]) -> {text [N]}`: `translate` of each source sentence, as text.

        A copy model's extended ids name source positions; the batcher maps them to the words
        there, as `ids_to_text` does.
        """

        def translation(batch):
            ids = self.translate(batch["source"], batch["source_mask"])
            source = batch["source"] if self.mode == "copy" else None
            return {"text": batcher.to_text(ids, source=source)}

        return {"translate": serving.text_signature(batcher, translation)}

    def evaluate_corpus(self, corpus, split: str, batch_size: int) -> dict[str, float]:
        splits = [split] + (list(BLEU_EXTRA_SPLITS) if split == "test" else [])
        translate = tf.function(self.translate, input_signature=[
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)])
        if getattr(corpus, "has_reference_sets", False):  # data-to-text: all references
            return self._multi_reference_scores(corpus, split, batch_size, translate)
        metrics = {}
        for name in splits:
            if name not in corpus.splits:
                continue
            hypotheses = []
            limit = self.config["bleu_max_examples"]
            for batch in corpus.dataset(name, self.input_form, batch_size):
                ids = translate(batch["source"], batch["source_mask"]).numpy()
                hypotheses += self.ids_to_text(ids, batch["source"].numpy(), corpus)
                if limit and len(hypotheses) >= limit:
                    break
            hypotheses = hypotheses[:limit] if limit else hypotheses
            references = corpus.references(name)[:len(hypotheses)]
            key = "bleu" if name == split else f"bleu_{name}"
            metrics[key] = corpus_bleu(hypotheses, references, tokenized=True)
        return metrics

    def _multi_reference_scores(self, corpus, split, batch_size, translate) -> dict[str, float]:
        """The E2E challenge's metrics (BLEU, NIST, METEOR, ROUGE-L, CIDEr:
        `tflv.text_metrics.challenge_scores`) of the translations of each distinct source of
        `split` against all its references (`corpus.reference_sets`)."""
        from tflv.text_metrics import reference_set_scores
        realise = lambda source, pairs: self.ids_to_text(
            translate(source, (source > 0).astype(np.float32)).numpy(), source, corpus)
        return reference_set_scores(corpus, split, batch_size, self.config["bleu_max_examples"],
                                    realise)

    def get_config(self):
        return {**super().get_config(), **self.config}


def categorical_kl(log_q, log_p):
    """KL(q ‖ p) = Σ_s q(s) (log q(s) − log p(s)) of normalised log-probabilities:
    [..., S] → [...]."""
    return tf.reduce_sum(tf.exp(log_q) * (log_q - log_p), axis=-1)


class LatentAttention(EncoderDecoder):
    """`latent_attention`: `EncoderDecoder` with z_t latent, trained as `Config.estimator` says
    (exact marginal, REINFORCE or Gumbel-softmax; `attention_training`: the older names)."""

    @dataclasses.dataclass(frozen=True)
    class Config(EncoderDecoder.Config):
        """Latent attention's hyperparameters (`LatentAttention.from_corpus(corpus, config)`).

        `estimator` and its options (`latent_samples`, `baseline`, `gumbel_temperature`,
        `straight_through`: the fields of `tflv.models.MixtureLM.Config`, read only where the
        estimator takes them) build the `tflv.vi.estimators.CategoricalEstimator`;
        `attention_training` is the older choice, kept so that runs recorded with it rebuild
        the same model: `exact` is `estimator=exact`, `elbo` REINFORCE with the leave-one-out
        baseline over `attention_samples` samples.

        >>> LatentAttention.Config(estimator="gumbel_softmax", latent_samples=2).estimator
        'gumbel_softmax'
        """
        estimator: str = cfg.hparam(
            "exact", "Train z_t (the attended source position) by the exact marginal over source "
            "positions, or the ELBO with an inference network q(z_t | x, y) by REINFORCE or the "
            "Gumbel-softmax relaxation (a name of `tflv.vi.estimators.ESTIMATORS`).",
            choices=tuple(estimators.ESTIMATORS))
        latent_samples: int = cfg.hparam(1, "Samples of z_t per target token (score_function, "
                                         "gumbel_softmax).", at_least=1)
        baseline: str = cfg.hparam("none", "score_function control variate (leave_one_out: "
                                   "latent_samples >= 2).", choices=estimators.BASELINES)
        gumbel_temperature: float = cfg.hparam(1.0, "gumbel_softmax: temperature.",
                                               positive=True)
        straight_through: bool = cfg.hparam(False, "gumbel_softmax: straight-through.")
        attention_training: str | None = cfg.hparam(
            None, "Older name of the estimator (not with estimator): exact = estimator exact; "
            "elbo = score_function with the leave-one-out baseline over attention_samples "
            "samples.", choices=("exact", "elbo"))
        attention_samples: int = cfg.hparam(2, "With attention_training elbo: samples of z_t "
                                            "per token (>= 2, leave-one-out baseline).",
                                            at_least=2)

    @classmethod
    def _from_config(cls, corpus, config, attention: str = "") -> "EncoderDecoder":
        return EncoderDecoder._from_config(corpus, config, attention="latent",
                                           estimator=cls.config_estimator(config))

    @staticmethod
    def config_estimator(config) -> estimators.CategoricalEstimator:
        """The estimator `config` names (`estimator` and its options, or `attention_training`).

        Raises:
          ConfigError: both `attention_training` and an `estimator` other than exact are given.
        """
        if config.attention_training is None:
            return estimators.from_hparams(config)
        if config.estimator != "exact":
            raise cfg.ConfigError(
                f"attention_training is the older name of estimator: give one of them, got "
                f"attention_training={config.attention_training!r} and "
                f"estimator={config.estimator!r}", "attention_training", "estimator")
        if config.attention_training == "elbo":
            return legacy_estimator("elbo", config.attention_samples)
        return legacy_estimator(config.attention_training)


class CopyAttention(EncoderDecoder):
    """`copy_attention`: `EncoderDecoder` with the generate/copy switch."""

    @classmethod
    def _from_config(cls, corpus, config, attention: str = "") -> "EncoderDecoder":
        return EncoderDecoder._from_config(corpus, config, attention="copy")
