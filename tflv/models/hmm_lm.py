"""`hmm_lm`: an HMM language model with blocked emissions, neural parameters and state dropout.

Chiu & Rush (2020): p(x) = Σ_z π[z_1] Π_t A[z_{t-1}, z_t] Π_t E[z_t, x_t] with K states in M
blocks, each word emitted by the states of one block only (`tflv.distributions.BlockedHMM`),
π, A and E computed from state and word embeddings (`BlockedNeuralHMM`), trained by the exact
log-likelihood. Words are assigned to blocks (`word_assignment`) by frequency: the training
targets' words sorted by decreasing count are dealt round-robin to the M blocks (rank r → block
r mod M), so every block emits a mix of frequent and rare words (`WordBlocks.by_frequency`); or
by clusters, as Chiu & Rush do with Brown clusters: M word classes of the training bigrams by
the exchange algorithm (`data.word_clusters`), so a block's states emit words that occur in
like contexts.

On the continuous stream (form `stream`, e.g. PTB) every window of T target tokens is one
sequence whose chain starts from π (no state carried between windows, like `rnnlm`'s zero
state); on form `sentences` each sentence is one. The per-example loss is −log p(x) per real
token; `nll` = −log p(x), so perplexity is exp(Σ nll / Σ tokens) over a split, exactly.
During training (`training=True`) state dropout keeps n = S - round(rate·S) random states of
each block for the whole batch and renormalises over them (`BlockedNeuralHMM`); evaluation
uses all K states.

#### Example

    model = HMMLM.from_corpus(data.load("ptb"), num_states=16384, num_blocks=128,
                              word_assignment="clusters", embed_dim=128, hidden_dim=128,
                              state_dropout=0.5)

(Trained so on PTB, 4,000 Adam steps of 128 windows at 0.01, it reached test perplexity 128.1,
below a Kneser–Ney 5-gram's 141.2, in 44 minutes on 2 CPU cores; the same at K = 4096 with
blocks by frequency instead of clusters gave 273.0 against 200.3 after 400 steps. BENCHMARKS.md,
"HMM language model", its PTB subsections.)

#### References

Chiu, J. T. & Rush, A. M. (2020). Scaling hidden Markov language models. EMNLP
(arXiv:2011.04640).
"""
from __future__ import annotations

import dataclasses
import keras
import tensorflow as tf

from data.word_clusters import bigram_counts, exchange_clusters
from tflv.distributions.blocked_hmm import WordBlocks
from tflv.layers.blocked_hmm_parameters import BlockedNeuralHMM, kept_count
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective
from tflv.models.rnnlm import lm_metrics
from tflv.models.unigram import token_counts


@keras.saving.register_keras_serializable(package="tflv")
class HMMLM(LatentVariableModel):
    """Blocked neural HMM language model (module docstring).

    Args:
      num_states: K, a multiple of num_blocks.
      word_blocks: the block of every word id, a list [V].
      num_blocks: M.
      embed_dim, hidden_dim: state/word embedding size and residual-MLP width.
      state_dropout: the fraction of each block's states dropped per training batch, in [0, 1).

    Batch (form `stream` or `sentences`): `targets` int32 [B, T], `mask` [B, T].
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """`HMMLM`'s hyperparameters (`HMMLM.from_corpus(corpus, config)`)."""
        num_states: int = cfg.NUM_STATES()
        num_blocks: int = cfg.hparam(1, "Blocks M of states (a divisor of num_states); each word "
                                     "is emitted by one block (see word_assignment).",
                                     at_least=1)
        word_assignment: str = cfg.hparam(
            "frequency", "How words are assigned to the M blocks: 'frequency' deals the "
            "frequency-ranked words round-robin; 'clusters' makes M word classes of the training "
            "bigrams by the exchange algorithm (Brown-style clusters, as Chiu & Rush).",
            choices=("frequency", "clusters"))
        embed_dim: int = cfg.EMBED_DIM()
        hidden_dim: int = cfg.HIDDEN_DIM()
        state_dropout: float = cfg.hparam(0.0, "Fraction of each block's states dropped per "
                                          "training batch (renormalised over the kept states).",
                                          unit_interval=True)

    input_form = "stream"
    datasets = ("ptb", "synthetic_hmm")

    def __init__(self, num_states: int, word_blocks, num_blocks: int, embed_dim: int = 64,
                 hidden_dim: int | None = None, state_dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(num_states=num_states, word_blocks=[int(b) for b in word_blocks],
                           num_blocks=num_blocks, embed_dim=embed_dim, hidden_dim=hidden_dim,
                           state_dropout=state_dropout)
        self.hmm = BlockedNeuralHMM(num_states, self.config["word_blocks"], num_blocks,
                                    embed_dim=embed_dim, hidden_dim=hidden_dim, name="hmm")
        kept_count(self.hmm.block_size, state_dropout)  # checks the rate
        self.seed_generator = keras.random.SeedGenerator(0)

    @classmethod
    def _from_config(cls, corpus, config) -> "HMMLM":
        vocab_size, num_states = corpus.info["vocab_size"], config.num_states
        num_blocks = config.num_blocks
        if num_blocks < 1 or num_states % num_blocks or num_blocks > vocab_size:
            raise cfg.ConfigError(f"num_blocks={num_blocks} must divide num_states={num_states} "
                                  f"and be at most the vocabulary size {vocab_size}",
                                  "num_blocks", "num_states")
        blocks = cls.word_blocks(corpus, num_blocks, config.word_assignment)
        return cls(num_states, blocks.block_of.tolist(), num_blocks,
                   embed_dim=config.embed_dim, hidden_dim=config.hidden_dim,
                   state_dropout=config.state_dropout)

    @classmethod
    def word_blocks(cls, corpus, num_blocks: int, assignment: str = "frequency") -> WordBlocks:
        """The block of every word, from the training split's unigram counts ('frequency') or
        its bigram counts ('clusters', `data.word_clusters.exchange_clusters`)."""
        vocab_size = corpus.info["vocab_size"]
        train = corpus.dataset("train", cls.input_form, 1024)
        if assignment == "frequency":
            return WordBlocks.by_frequency(token_counts(train, vocab_size), num_blocks)
        if assignment == "clusters":
            clusters = exchange_clusters(*bigram_counts(train, vocab_size), vocab_size, num_blocks)
            return WordBlocks(clusters.classes, num_blocks)
        raise ValueError(f"word_assignment must be 'frequency' or 'clusters', got {assignment!r}")

    def log_likelihood(self, tokens, mask, training: bool = False) -> tf.Tensor:
        """Exact log p(x) [B] (of the kept-state HMM under state dropout when training)."""
        kept = None
        if training and self.config["state_dropout"] > 0:
            seed = keras.random.randint([2], 0, 2 ** 31 - 1, seed=self.seed_generator)
            kept = self.hmm.keep_states(self.config["state_dropout"], tf.cast(seed, tf.int32))
        return self.hmm.log_prob(tokens, mask, kept)

    def objective(self, batch, training=False) -> Objective:
        mask = tf.cast(batch["mask"], tf.bool)
        nll = -self.log_likelihood(batch["targets"], mask, training)
        tokens = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)
        return Objective(loss=nll / tf.maximum(tokens, 1.0), stats={"nll": nll, "tokens": tokens})

    def metrics_from_sums(self, sums):
        return lm_metrics(sums)

    def sample(self, start_ids, max_length, temperature, seed) -> tf.Tensor:
        """Word ids [N, max_length] by ancestral sampling from π (start_ids only give N: every
        window's chain starts from π)."""
        params = self.hmm(None)
        return self.hmm.hmm(params).sample(params.emission, self.hmm.blocks,
                                           tf.shape(start_ids)[0], max_length, seed,
                                           temperature)

    def serving_signatures(self, batcher) -> dict:
        """`sample(num_samples, max_length, temperature, seed) -> {text [N]}` for SavedModel."""
        return {"sample": serving.sample_signature(batcher, self.sample)}

    def get_config(self):
        return {**super().get_config(), **self.config}
