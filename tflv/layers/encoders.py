"""Encoders: text → features for an inference network q(z | x), and word dropout.

- `RNNEncoder`: embedding → (bi)LSTM over the unpadded prefix of each row; the features are the
  final hidden state h_T (forward) or [h_T^→ ; h_1^←] (bidirectional), as in the sentence VAE of
  Bowman et al. (2016); optionally also the per-position states `[B, T, H]` (for attention or
  structured posteriors).
- `BagOfWordsEncoder`: an MLP on word counts, the NVDM inference network (Miao et al. 2016).
- `WordDropout`: during training replaces each decoder input token by `<unk>` with probability p
  (Bowman et al. 2016), weakening the decoder so that it must use z; padding (and any other
  `protected_ids`, by default `<pad>`, `<bos>`, `<eos>`) is never replaced.

#### References
- Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016). Generating Sentences from a
  Continuous Space.
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tflv.layers.lstm import LSTM

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # the reserved ids of `data.vocab.Vocabulary`


@keras.saving.register_keras_serializable(package="tflv")
class RNNEncoder(keras.layers.Layer):
    """Token ids `(batch_size, sequence_length)` → features `(batch_size, H')` [and states].

    H' = `hidden_dim`, or 2 · `hidden_dim` when `bidirectional`. Positions equal to `pad_id` (or
    false in `mask`) are skipped.

    Args:
      vocab_size: V.
      embed_dim: E.
      hidden_dim: H.
      bidirectional: run a backward LSTM too and concatenate.
      return_states: also return the per-position states `(batch_size, sequence_length, H')`.
      pad_id: the padding token id.

    Call arguments:
      inputs: int `(batch_size, sequence_length)`.
      mask: optional bool `(batch_size, sequence_length)`; default `inputs != pad_id`.

    Returns:
      features, or `(features, states)` with `return_states`.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256,
                 bidirectional: bool = False, return_states: bool = False, pad_id: int = PAD_ID,
                 **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.vocab_size, self.embed_dim, self.hidden_dim = vocab_size, embed_dim, hidden_dim
        self.bidirectional, self.return_states, self.pad_id = bidirectional, return_states, pad_id
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, dtype=policy,
                                                name="embedding")
        lstm = LSTM(hidden_dim, return_sequences=True, return_state=True,
                                 dtype=policy, name="lstm")
        self.rnn = keras.layers.Bidirectional(
            lstm, dtype=policy, name="bidirectional") if bidirectional else lstm

    def build(self, input_shape):
        self.embedding.build(input_shape)
        self.rnn.build(tuple(input_shape) + (self.embed_dim,))
        self.built = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = tf.not_equal(inputs, self.pad_id)
        outputs = self.rnn(self.embedding(inputs), mask=tf.cast(mask, tf.bool))
        states = outputs[0]  # [B, T, H']
        if self.bidirectional:  # [states, h_fw, c_fw, h_bw, c_bw]
            features = tf.concat([outputs[1], outputs[3]], axis=-1)
        else:  # [states, h, c]
            features = outputs[1]
        return (features, states) if self.return_states else features

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embed_dim=self.embed_dim,
                      hidden_dim=self.hidden_dim, bidirectional=self.bidirectional,
                      return_states=self.return_states, pad_id=self.pad_id)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class BagOfWordsEncoder(keras.layers.Layer):
    """Counts `(batch_size, vocab_size)` → features `(batch_size, hidden_units[-1])`.

    Args:
      hidden_units: widths of the hidden layers (at least one).
      activation: their activation.
    """

    def __init__(self, hidden_units: Sequence[int] = (500, 500), activation: str = "relu",
                 **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        if not hidden_units:
            raise ValueError("hidden_units must name at least one layer")
        self.hidden_units, self.activation = list(hidden_units), activation
        # One attribute per layer: Keras 3 wraps a list attribute in a container that
        # tf.train.Checkpoint does not traverse, so listed layers would not be checkpointed.
        for i, h in enumerate(self.hidden_units):
            setattr(self, f"dense_{i}", keras.layers.Dense(h, activation=activation,
                                                           dtype=policy, name=f"dense_{i}"))

    @property
    def mlp(self) -> list:
        return [getattr(self, f"dense_{i}") for i in range(len(self.hidden_units))]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.mlp:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.built = True

    def call(self, counts):
        h = tf.cast(counts, self.compute_dtype)
        for layer in self.mlp:
            h = layer(h)
        return h

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units, activation=self.activation)
        return config


@keras.saving.register_keras_serializable(package="tflv")
class WordDropout(keras.layers.Layer):
    """Token ids `(batch_size, sequence_length)` → same, some replaced by `unk_id` in training.

    Args:
      rate: p ∈ [0, 1], the replacement probability.
      unk_id: the `<unk>` id.
      protected_ids: ids never replaced (default `<pad>`, `<bos>`, `<eos>`).
      seed: int seed of the layer's own `keras.random.SeedGenerator`.

    Call arguments:
      inputs: int `(batch_size, sequence_length)`.
      training: replace only when true.
    """

    def __init__(self, rate: float, unk_id: int = UNK_ID,
                 protected_ids: Sequence[int] = (PAD_ID, BOS_ID, EOS_ID), seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        self.rate, self.unk_id, self.seed = rate, unk_id, seed
        self.protected_ids = list(protected_ids)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        drop = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) < self.rate
        for token in self.protected_ids:
            drop &= tf.not_equal(inputs, token)
        return tf.where(drop, tf.cast(self.unk_id, inputs.dtype), inputs)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, unk_id=self.unk_id, protected_ids=self.protected_ids,
                      seed=self.seed)
        return config
