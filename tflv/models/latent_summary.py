"""Language as a latent variable: a document x_{1:T} generated from a latent summary z_{1:M}.

Generative model (Miao & Blunsom 2016), M < T words over the same vocabulary V:

    p(z) = Π_m p(z_m | z_<m)                  an LSTM language model over summaries,
    p(x | z) = Π_t p(x_t | x_<t, z)           an LSTM decoder with soft attention over the states
                                              of a bidirectional LSTM run over z_1..z_M.

The summary's encoder gives the decoder the *order* of z: attending over the bare embeddings
e(z_1..z_M), a set, the decoder cannot tell which summary word comes first (on synthetic pairs
where x spells z out in order, that cost 0.55 nats per document; tests/models).

Inference network, a pointer network that copies summary words from the document: an LSTM over
<bos>, z_1..z_{M-1} (fed the chosen *words*) attends over a bidirectional encoding of x with
weights α_m, and

    q(z_m = w | z_<m, x) = Σ_{t : x_t = w} α_mt,      log q(z | x) = Σ_m log q(z_m | z_<m, x),

a proper distribution over V^M (words absent from x have probability 0). Unsupervised documents
maximise the ELBO  E_q[log p(x | z) + log p(z) − log q(z | x)] ≤ log p(x), its gradient by
REINFORCE (`tflv.vi.estimators.score_function`) with the leave-one-out baseline of S ≥ 2
samples; documents with a given summary z* (semi-supervised training) maximise
log p(x | z*) + log p(z*) + log q(z* | x), the supervised objective of Miao & Blunsom (2016).
Reported: the negative ELBO per token as an upper bound on the NLL (`nll`, `ppl`).

Batch: form `sentences` (`inputs` <bos> x, `targets` x <eos>, `mask`), optionally `summary`
int [B, M] with `has_summary` float [B] (1 where z* is given).

#### References
- Miao & Blunsom (2016). Language as a Latent Variable: Discrete Generative Models for Sentence
  Compression. EMNLP.
- Vinyals, Fortunato & Jaitly (2015). Pointer Networks. NeurIPS.
- Williams (1992); Mnih & Rezende (2016) (score function, leave-one-out baseline).
"""
from __future__ import annotations

import dataclasses
import keras
import tensorflow as tf

from tflv.layers.attention import Attention, soft_context
from tflv.layers.encoders import RNNEncoder
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective, full_precision
from tflv.layers.lstm import LSTM
from tflv.models.rnnlm import lm_metrics
from tflv.models.unigram import bias_initializer, log_frequencies, token_counts
from tflv.vi import estimators

BOS_ID = 2
NO_MATCH = -1e9


@keras.saving.register_keras_serializable(package="tflv")
class LatentSummary(LatentVariableModel):
    """Auto-encoder with a discrete latent word sequence (see the module docstring).

    Args:
      vocab_size: V.
      summary_length: M.
      embed_dim, hidden_dim: E, H.
      num_samples: S ≥ 2 samples of z per document (leave-one-out baseline).
      output_bias: float [V], the initial bias of both word projections (the summary prior's
        and the document decoder's); `from_corpus` passes the training words' log unigram
        frequencies (`tflv.models.unigram`), None starts from zeros. Not configuration: a
        restored model takes the biases from its weights.
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """`LatentSummary`'s hyperparameters (`LatentSummary.from_corpus(corpus, config)`)."""
        summary_length: int = cfg.hparam(5, "Words M of the latent summary.", at_least=1)
        embed_dim: int = cfg.EMBED_DIM()
        hidden_dim: int = cfg.HIDDEN_DIM()
        summary_samples: int = cfg.hparam(2, "Samples of z per document (>= 2, leave-one-out "
                                          "baseline).", at_least=2)

    input_form = "sentences"
    datasets = ("ptb",)
    stochastic_score = True  # the ELBO is estimated with sampled summaries

    def __init__(self, vocab_size: int, summary_length: int = 5, embed_dim: int = 128,
                 hidden_dim: int = 128, num_samples: int = 2, output_bias=None, **kwargs):
        super().__init__(**kwargs)
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 (leave-one-out baseline), got "
                             f"{num_samples}")
        if summary_length < 1:
            raise ValueError(f"summary_length must be >= 1, got {summary_length}")
        self.config = dict(vocab_size=vocab_size, summary_length=summary_length,
                           embed_dim=embed_dim, hidden_dim=hidden_dim, num_samples=num_samples)
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, name="embedding")
        lstm = lambda name: LSTM(hidden_dim, return_sequences=True, return_state=True,
                                 name=name)
        self.prior_lstm, self.pointer_lstm, self.decoder_lstm = (
            lstm("prior_lstm"), lstm("pointer_lstm"), lstm("decoder_lstm"))
        bias = bias_initializer(output_bias, vocab_size)
        self.prior_projection = keras.layers.Dense(vocab_size, bias_initializer=bias,
                                                   name="prior_projection")
        self.encoder = RNNEncoder(vocab_size, embed_dim, hidden_dim, bidirectional=True,
                                  return_states=True, name="encoder")
        self.summary_encoder = keras.layers.Bidirectional(
            LSTM(hidden_dim, return_sequences=True), name="summary_encoder")
        self.bridge = keras.layers.Dense(hidden_dim, activation="tanh", name="bridge")
        self.pointer = Attention(hidden_dim, name="pointer")
        self.decoder_attention = Attention(hidden_dim, name="decoder_attention")
        self.combine = keras.layers.Dense(hidden_dim, activation="tanh", name="combine")
        self.projection = keras.layers.Dense(vocab_size, bias_initializer=bias, name="projection")
        self.seed_generator = keras.random.SeedGenerator(0)

    @classmethod
    def _from_config(cls, corpus, config) -> "LatentSummary":
        return cls(vocab_size=corpus.info["vocab_size"],
                   summary_length=config.summary_length, embed_dim=config.embed_dim,
                   hidden_dim=config.hidden_dim, num_samples=config.summary_samples,
                   output_bias=log_frequencies(token_counts(
                       corpus.dataset("train", cls.input_form, 1024), corpus.info["vocab_size"])))

    # -- the three distributions, scored for given z ----------------------------------------

    def _shifted(self, z):
        """<bos> z_1..z_{M-1}: int [N, M]."""
        return tf.concat([tf.fill([tf.shape(z)[0], 1], BOS_ID), z[:, :-1]], axis=1)

    def log_prior(self, z):
        """log p(z): z int [N, M] → [N]."""
        h, _, _ = self.prior_lstm(self.embedding(self._shifted(z)))
        log_probs = tf.nn.log_softmax(full_precision(self.prior_projection(h)))  # [N, M, V]
        return tf.reduce_sum(tf.gather(log_probs, z, batch_dims=2), axis=1)

    def log_likelihood(self, batch, z):
        """log p(x | z): batch rows [N, T], z int [N, M] → [N]."""
        mask = tf.cast(batch["mask"], tf.float32)
        memory = self.summary_encoder(self.embedding(z))  # [N, M, 2H]
        h, _, _ = self.decoder_lstm(self.embedding(batch["inputs"]), mask=tf.cast(mask, tf.bool))
        context = soft_context(self.decoder_attention((h, memory, tf.ones(tf.shape(z)[:2]))),
                               memory)
        logits = full_precision(self.projection(self.combine(tf.concat([h, context], axis=-1))))
        log_probs = tf.gather(tf.nn.log_softmax(logits), batch["targets"], batch_dims=2)
        return tf.reduce_sum(log_probs * mask, axis=1)

    def encode(self, batch):
        """The pointer's memory [N, T, 2H] and start state [N, H] from the document."""
        mask = tf.cast(batch["mask"], tf.bool)
        features, memory = self.encoder(batch["targets"], mask=mask)
        h0 = self.bridge(features)
        return memory, [h0, tf.zeros_like(h0)]

    def log_posterior(self, batch, z, encoded=None):
        """log q(z | x) = Σ_m log Σ_{t: x_t = z_m} α_mt: z int [N, M] → [N]."""
        memory, state = encoded or self.encode(batch)
        h, _, _ = self.pointer_lstm(self.embedding(self._shifted(z)), initial_state=state)
        log_alignment = self.pointer((h, memory, batch["mask"]))  # [N, M, T]
        match = tf.equal(z[:, :, None], tf.cast(batch["targets"], z.dtype)[:, None, :])
        per_word = tf.reduce_logsumexp(tf.where(match, log_alignment, NO_MATCH), axis=-1)
        return tf.reduce_sum(per_word, axis=1)

    def sample_summary(self, batch, encoded=None, greedy: bool = False):
        """z ~ q(z | x), one word at a time by pointing: int [N, M] (no gradient).

        greedy: z_m = argmax_w q(z_m = w | z_<m, x) instead of a draw (the word's probability
        summed over its positions in x).
        """
        memory, state = encoded or self.encode(batch)
        targets = tf.cast(batch["targets"], tf.int32)
        same_word = tf.equal(targets[:, :, None], targets[:, None, :])  # [N, T, T]
        token = tf.fill([tf.shape(targets)[0]], BOS_ID)
        words = []
        for _ in range(self.config["summary_length"]):
            h, h_last, c_last = self.pointer_lstm(self.embedding(token[:, None]),
                                                  initial_state=state)
            state = [h_last, c_last]
            log_alignment = self.pointer((h, memory, batch["mask"]))[:, 0]  # [N, T]
            if greedy:  # log q(z_m = x_t) at every position t
                log_word = tf.reduce_logsumexp(
                    tf.where(same_word, log_alignment[:, None, :], NO_MATCH), axis=-1)
                position = tf.argmax(log_word, axis=-1, output_type=tf.int32)
            else:
                position = keras.random.categorical(log_alignment, 1, dtype="int32",
                                                    seed=self.seed_generator)[:, 0]
            token = tf.gather(targets, position, batch_dims=1)
            words.append(token)
        return tf.stop_gradient(tf.stack(words, axis=1))

    # -- the objective ----------------------------------------------------------------------

    def elbo(self, batch):
        """(surrogate [B] with the REINFORCE gradient, ELBO estimate [B]) from S samples."""
        s = self.config["num_samples"]
        tiled = {k: tf.repeat(batch[k], s, axis=0) for k in ("inputs", "targets", "mask")}
        encoded = self.encode(tiled)  # rows: document b's S samples adjacent
        z = self.sample_summary(tiled, encoded)  # [B*S, M]
        log_q = self.log_posterior(tiled, z, encoded)
        signal = self.log_likelihood(tiled, z) + self.log_prior(z) - log_q  # [B*S]
        to_samples = lambda x: tf.transpose(tf.reshape(x, [-1, s]))  # [S, B]
        signal, log_q = to_samples(signal), to_samples(log_q)
        surrogate = estimators.score_function(
            log_q, signal, baseline=estimators.leave_one_out_baseline(signal))
        return surrogate, tf.reduce_mean(signal, axis=0)

    def objective(self, batch, training=False) -> Objective:
        mask = tf.cast(batch["mask"], tf.float32)
        tokens = tf.reduce_sum(mask, axis=1)
        surrogate, elbo = self.elbo(batch)
        gain = surrogate
        if "summary" in batch:  # semi-supervised: rows with a given summary z*
            z = tf.cast(batch["summary"], tf.int32)
            supervised = (self.log_likelihood(batch, z) + self.log_prior(z)
                          + self.log_posterior(batch, z))
            gain = tf.where(tf.cast(batch["has_summary"], tf.bool), supervised, surrogate)
        return Objective(loss=-gain / tf.maximum(tokens, 1.0),
                         stats={"nll": -elbo, "tokens": tokens})

    def metrics_from_sums(self, sums):
        return lm_metrics(sums)

    def serving_signatures(self, batcher) -> dict:
        """`summarize(text [N]) -> {text [N]}`: the greedy summary of each document (M words,
        up to an `<eos>` among them)."""
        return {"summarize": serving.text_signature(batcher, lambda batch: {
            "text": batcher.to_text(self.sample_summary(batch, greedy=True))})}

    def get_config(self):
        return {**super().get_config(), **self.config}
