"""Recurrent language-model decoders, optionally conditioned on a latent vector.

An LSTM decoder defines

    p(x | z) = prod_t softmax(W [h_t ; z_skip] + b)[x_t],   h_t = LSTM(h_{t-1}, [e(x_{t-1}) ; z]),

where `z` (if given) is concatenated to every input embedding (Bowman et al. 2016) and, with
`skip_connections=True`, also to every layer's hidden state before the next layer and the output
projection, so the latent cannot be ignored by a strong decoder (generative skip connections,
Dieng et al. 2018). Without `z` it is the baseline RNN language model (Zaremba et al. 2014).

#### References
- Zaremba, Sutskever & Vinyals (2014). Recurrent Neural Network Regularization.
- Bowman et al. (2016). Generating Sentences from a Continuous Space.
- Dieng, Kim, Rush & Blei (2018). Avoiding Latent Variable Collapse with Generative Skip Models.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tflv.decoding import sample_tokens
from tflv.layers.lstm import LSTM


@keras.saving.register_keras_serializable(package="tflv")
class RNNDecoder(keras.layers.Layer):
    """Embedding → stacked LSTM → vocabulary logits, with optional latent conditioning.

    Args:
      vocab_size: output vocabulary size V.
      embed_dim: token embedding size E.
      hidden_dim: LSTM state size H.
      num_layers: number of stacked LSTM layers.
      dropout: dropout on embeddings and between layers (training only).
      skip_connections: feed `z` to every layer's output as well as the inputs (Dieng et al. 2018).
      tie_embeddings: reuse the embedding matrix as the output projection (needs E == H).

    Call arguments:
      inputs: int32 `(batch_size, sequence_length)` token ids (`<bos>` first).
      z: optional float `(batch_size, latent_dim)` latent code.
      mask: optional `(batch_size, sequence_length)` float/bool, true on real tokens.
      initial_state: optional list of `[h, c]` pairs, one per layer, each `(batch_size, H)`.
      return_state: also return the final states (for step-by-step generation).
      training: enables dropout.

    Returns:
      logits `(batch_size, sequence_length, V)`; with `return_state`, `(logits, states)`.

    Examples:
    >>> decoder = RNNDecoder(vocab_size=100, embed_dim=16, hidden_dim=32)
    >>> logits = decoder(tf.zeros([2, 5], tf.int32))
    >>> logits.shape
    TensorShape([2, 5, 100])
    """

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256,
                 num_layers: int = 1, dropout: float = 0.0, skip_connections: bool = False,
                 tie_embeddings: bool = False, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.supports_masking = True
        if tie_embeddings and embed_dim != hidden_dim:
            raise ValueError(f"tie_embeddings needs embed_dim == hidden_dim, got {embed_dim} and "
                             f"{hidden_dim}")
        if tie_embeddings and skip_connections:
            raise ValueError("tie_embeddings cannot be combined with skip_connections (the output "
                             "projection would need the latent's width)")
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.skip_connections = skip_connections
        self.tie_embeddings = tie_embeddings
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, dtype=policy,
                                                name="embedding")
        # One attribute per layer: Keras 3 wraps a list attribute in a container that
        # tf.train.Checkpoint does not traverse, so listed layers would not be checkpointed.
        for i in range(num_layers):
            setattr(self, f"lstm_{i}", LSTM(
                hidden_dim, return_sequences=True, return_state=True, dtype=policy,
                name=f"lstm_{i}"))
        self.drop = keras.layers.Dropout(dropout, dtype=policy)
        if not tie_embeddings:
            self.projection = keras.layers.Dense(vocab_size, dtype=policy, name="projection")

    def build(self, inputs_shape, z_shape=None):
        """Creates every weight: the LSTMs' and the projection's widths grow by the latent's."""
        latent = 0 if z_shape is None else z_shape[-1]
        batch_time = tuple(inputs_shape)
        self.embedding.build(batch_time)
        width = self.embed_dim + latent
        for cell in self.cells:
            cell.build(batch_time + (width,))
            width = self.hidden_dim + (latent if self.skip_connections else 0)
        if self.tie_embeddings:
            self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,),
                                               initializer="zeros")
        else:
            self.projection.build(batch_time + (width,))
        self.built = True

    @property
    def cells(self) -> list:
        return [getattr(self, f"lstm_{i}") for i in range(self.num_layers)]

    def _with_latent(self, h, z):
        # h: [B, T, D], z: [B, Z] -> [B, T, D + Z]
        z_seq = tf.tile(tf.expand_dims(tf.cast(z, h.dtype), 1), [1, tf.shape(h)[1], 1])
        return tf.concat([h, z_seq], axis=-1)

    def call(self, inputs, z=None, mask=None, initial_state=None, return_state=False,
             training=None):
        h = self.drop(self.embedding(inputs), training=training)  # [B, T, E]
        if z is not None:
            h = self._with_latent(h, z)
        lstm_mask = None if mask is None else tf.cast(mask, tf.bool)
        states = []
        for i, cell in enumerate(self.cells):
            state = None if initial_state is None else initial_state[i]
            h, h_last, c_last = cell(h, mask=lstm_mask, initial_state=state, training=training)
            states.append([h_last, c_last])
            h = self.drop(h, training=training)  # [B, T, H]
            if z is not None and self.skip_connections:
                h = self._with_latent(h, z)
        if self.tie_embeddings:
            embeddings = tf.cast(self.embedding.embeddings, h.dtype)  # float32 variable
            logits = tf.einsum("bth,vh->btv", h, embeddings) + tf.cast(self.output_bias, h.dtype)
        else:
            logits = self.projection(h)  # [B, T, V]
        return (logits, states) if return_state else logits

    def sample(self, start_ids, max_length: int, z=None, temperature: float = 1.0, seed=None):
        """Ancestral sampling, x_t ~ softmax(logits_t / temperature), one token at a time
        (`tflv.decoding.sample_tokens`; temperature 0: greedy, x_t = argmax logits_t).

        Args:
          start_ids: int32 `(N,)` first input token of each sample (`<bos>`).
          max_length: number of tokens to draw.
          z: optional `(N, latent_dim)` latent code held fixed over the sample.
          temperature: softmax temperature τ ≥ 0 (0: greedy).
          seed: int32 `(2,)` stateless seed; the draws are a deterministic function of it.

        Returns:
          int32 `(N, max_length)` sampled ids (callers cut at `<eos>`).
        """
        seed = tf.zeros([2], tf.int32) if seed is None else tf.cast(seed, tf.int32)
        n = tf.shape(start_ids)[0]
        zeros = tf.zeros([n, self.hidden_dim], self.compute_dtype)
        states = [[zeros, zeros] for _ in self.cells]

        def step(carry, t):
            token, states = carry
            logits, states = self(token[:, None], z=z, initial_state=states, return_state=True)
            token = sample_tokens(logits[:, 0], temperature, seed + tf.stack([0, t]))  # [N]
            return token, states

        tokens, _ = tf.scan(step, tf.range(max_length),
                            initializer=(tf.cast(start_ids, tf.int32), states))
        return tf.transpose(tokens)  # [N, max_length]

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embed_dim=self.embed_dim,
                      hidden_dim=self.hidden_dim, num_layers=self.num_layers,
                      dropout=self.dropout, skip_connections=self.skip_connections,
                      tie_embeddings=self.tie_embeddings)
        return config
