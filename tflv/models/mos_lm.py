"""Mixture-of-softmaxes language model: `rnnlm` with a per-token latent expert at the output.

    p(x) = Π_t Σ_{k=1}^{K} π_k(g_t) softmax(W tanh(P_k g_t + c_k) + b)[x_t],

g_t the LSTM state after x_<t, the latent z_t = k summed out exactly
(`tflv.layers.mixture_of_softmaxes`). Same data, loss and metrics as `rnnlm` (per-token NLL,
perplexity over the PTB stream), so the two compare at equal sizes and steps.

#### References
- Yang, Dai, Salakhutdinov & Cohen (2018). Breaking the Softmax Bottleneck: A High-Rank RNN
  Language Model. ICLR.
"""
from __future__ import annotations

import dataclasses

import keras

from tflv.layers.mixture_of_softmaxes import MoSDecoder
from tflv.models import config as cfg
from tflv.models.rnnlm import LSTMLanguageModelConfig, RNNLM


@keras.saving.register_keras_serializable(package="tflv")
class MoSLM(RNNLM):
    """LSTM language model with a mixture-of-softmaxes output.

    Args:
      vocab_size, embed_dim, hidden_dim, num_layers, dropout: as `RNNLM`.
      num_softmaxes: K.
    """

    @dataclasses.dataclass(frozen=True)
    class Config(LSTMLanguageModelConfig):
        """`MoSLM`'s hyperparameters (`MoSLM.from_corpus(corpus, config)`)."""
        num_softmaxes: int = cfg.hparam(5, "Mixture components K of the output softmax.",
                                        at_least=1)

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256,
                 num_layers: int = 1, dropout: float = 0.0, num_softmaxes: int = 5, **kwargs):
        kwargs.pop("tie_embeddings", None)  # from a saved config; MoS never ties
        super().__init__(vocab_size, embed_dim, hidden_dim, num_layers, dropout, **kwargs)
        self.config["num_softmaxes"] = num_softmaxes
        # Replaces RNNLM's decoder, which stays unbuilt and holds no weights.
        self.decoder = MoSDecoder(vocab_size, num_softmaxes, embed_dim=embed_dim,
                                  hidden_dim=hidden_dim, num_layers=num_layers, dropout=dropout,
                                  name="decoder")

    @classmethod
    def _from_config(cls, corpus, config) -> "MoSLM":
        return cls(vocab_size=corpus.info["vocab_size"], embed_dim=config.embed_dim,
                   hidden_dim=config.hidden_dim, num_layers=config.num_layers,
                   dropout=config.dropout, num_softmaxes=config.num_softmaxes)
