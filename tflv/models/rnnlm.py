"""The baseline: an LSTM language model, p(x) = prod_t p(x_t | x_<t) (Zaremba et al. 2014).

Every latent-variable language model in tflv is compared with this one. On the continuous PTB
stream (form `stream`) each example is a window of T tokens; the per-example loss is its mean
negative log-likelihood per real token, and perplexity is exp(sum NLL / number of tokens) over a
split, every token predicted exactly once. Windows start from a zero state (no state is carried
between batches, which keeps every batch independent for `tf.distribute` and resumption).

#### References
- Zaremba, Sutskever & Vinyals (2014). Recurrent Neural Network Regularization. arXiv:1409.2329.
"""
from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tflv import metrics
from tflv.layers.decoders import RNNDecoder
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective, full_precision


def token_nll(logits: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Masked token negative log-likelihoods. logits [B,T,V], targets int [B,T], mask [B,T] → [B,T].

    Half-precision logits (a mixed-precision decoder's) are cast to float32 first: the softmax's
    logsumexp over V and the loss are computed in float32."""
    logits = full_precision(logits)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return nll * tf.cast(mask, nll.dtype)


def lm_metrics(sums) -> dict[str, float]:
    """Per-token NLL and perplexity from summed `nll` and `tokens`."""
    nll = sums["nll"] / max(sums["tokens"], 1.0)
    return {"nll": nll, "ppl": metrics.exp_nats(nll), "tokens": sums["tokens"]}


@dataclasses.dataclass(frozen=True)
class LSTMLanguageModelConfig(cfg.ModelConfig):
    """The hyperparameters an LSTM language model's `Config` starts from (`RNNLM`, `MoSLM`)."""
    embed_dim: int = cfg.EMBED_DIM()
    hidden_dim: int = cfg.HIDDEN_DIM()
    num_layers: int = cfg.NUM_LAYERS()
    dropout: float = cfg.DROPOUT()


@keras.saving.register_keras_serializable(package="tflv")
class RNNLM(LatentVariableModel):
    """LSTM language model on a token stream.

    Args:
      vocab_size: V.
      embed_dim, hidden_dim, num_layers, dropout, tie_embeddings: see `RNNDecoder`.

    Batch (form `stream` or `sentences`): `inputs` int32 [B,T], `targets` int32 [B,T], `mask` [B,T].
    """

    @dataclasses.dataclass(frozen=True)
    class Config(LSTMLanguageModelConfig):
        """`RNNLM`'s hyperparameters (`RNNLM.from_corpus(corpus, config)`)."""
        tie_embeddings: bool = cfg.hparam(False, "Share input embeddings and output projection.")

    input_form = "stream"
    datasets = ("ptb", "tinyshakespeare", "synthetic_hmm")

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256,
                 num_layers: int = 1, dropout: float = 0.0, tie_embeddings: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.config = dict(vocab_size=vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim,
                           num_layers=num_layers, dropout=dropout, tie_embeddings=tie_embeddings)
        self.decoder = RNNDecoder(**self.config, name="decoder")

    @classmethod
    def _from_config(cls, corpus, config) -> "RNNLM":
        return cls(vocab_size=corpus.info["vocab_size"], embed_dim=config.embed_dim,
                   hidden_dim=config.hidden_dim, num_layers=config.num_layers,
                   dropout=config.dropout, tie_embeddings=config.tie_embeddings)

    def objective(self, batch, training=False) -> Objective:
        mask = tf.cast(batch["mask"], tf.float32)  # [B, T]
        logits = self.decoder(batch["inputs"], mask=mask, training=training)  # [B, T, V]
        nll = tf.reduce_sum(token_nll(logits, batch["targets"], mask), axis=1)  # [B]
        tokens = tf.reduce_sum(mask, axis=1)  # [B]
        return Objective(loss=nll / tf.maximum(tokens, 1.0), stats={"nll": nll, "tokens": tokens})

    def metrics_from_sums(self, sums):
        return lm_metrics(sums)

    def serving_signatures(self, batcher) -> dict:
        """`sample(num_samples, max_length, temperature, seed) -> {text [N]}` for SavedModel."""
        return {"sample": serving.sample_signature(
            batcher, lambda start, length, temperature, seed: self.decoder.sample(
                start, length, temperature=temperature, seed=seed))}

    def get_config(self):
        return {**super().get_config(), **self.config}
