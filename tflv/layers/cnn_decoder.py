"""A dilated causal convolutional decoder, optionally conditioned on a latent vector.

Yang, Hu, Salakhutdinov & Berg-Kirkpatrick (2017) replace the LSTM decoder of the sentence VAE
by a dilated CNN, whose limited receptive field controls how much context the decoder sees
without z, and so how much it must rely on z. With the input
u_t = [e(x_{t−1}) ; z] (Bowman et al. 2016) and residual blocks l = 1 … L of dilation d_l,

    h^0_t = W_in u_t,
    h^l_t = h^{l−1}_t + W^l_2 relu(Σ_{j=0}^{k−1} W^l_{1,j} relu(h^{l−1}_{t − j d_l})),
    p(x_t | x_<t, z) = softmax(W_out [h^L_t ; z_skip] + b)[x_t],

where a position before the start reads zeros (causal padding), so h_t depends on x_{<t} only,
and the receptive field is 1 + (k − 1) Σ_l d_l previous tokens. With `skip_connections=True`, z
is also concatenated to every block's input and to the output projection (Dieng et al. 2018).
Padding positions at the end of a row cannot reach earlier positions, so no mask is needed.

#### References
- Yang, Hu, Salakhutdinov & Berg-Kirkpatrick (2017). Improved Variational Autoencoders for Text
  Modeling using Dilated Convolutions.
- van den Oord et al. (2016). WaveNet: A Generative Model for Raw Audio (dilated causal
  convolutions).
- Dieng, Kim, Rush & Blei (2018). Avoiding Latent Variable Collapse with Generative Skip Models.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tflv.decoding import sample_tokens


@keras.saving.register_keras_serializable(package="tflv")
class CNNDecoder(keras.layers.Layer):
    """Embedding → residual dilated causal convolutions → vocabulary logits.

    Args:
      vocab_size: output vocabulary size V.
      embed_dim: token embedding size E.
      hidden_dim: channels H of every block.
      kernel_size: k ≥ 1, taps per dilated convolution.
      dilations: d_l of the blocks (e.g. `(1, 2, 4)`), each ≥ 1.
      dropout: dropout on embeddings and block outputs (training only).
      skip_connections: also feed z to every block and the output projection.

    Call arguments:
      inputs: int32 `(batch_size, sequence_length)` token ids (`<bos>` first).
      z: optional float `(batch_size, latent_dim)` latent code.
      mask: accepted for the `RNNDecoder` interface; unused (the convolution is causal).
      training: enables dropout.

    Returns:
      logits `(batch_size, sequence_length, V)`.

    Examples:
    >>> decoder = CNNDecoder(vocab_size=100, embed_dim=16, hidden_dim=32, dilations=(1, 2))
    >>> logits = decoder(tf.zeros([2, 5], tf.int32), z=tf.zeros([2, 8]))
    >>> logits.shape
    TensorShape([2, 5, 100])
    """

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256,
                 kernel_size: int = 3, dilations: Sequence[int] = (1, 2, 4), dropout: float = 0.0,
                 skip_connections: bool = False, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy  # sublayers compute in this layer's dtype
        self.supports_masking = True
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if not dilations or min(dilations) < 1:
            raise ValueError(f"dilations must be a non-empty list of integers >= 1, got "
                             f"{list(dilations)}")
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.dilations = [int(d) for d in dilations]
        self.dropout = dropout
        self.skip_connections = skip_connections
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, dtype=policy,
                                                name="embedding")
        self.input_projection = keras.layers.Dense(hidden_dim, dtype=policy,
                                                   name="input_projection")
        # One attribute per block: tf.train.Checkpoint does not traverse Keras 3 list attributes.
        for i, d in enumerate(self.dilations):
            setattr(self, f"conv_{i}", keras.layers.Conv1D(
                hidden_dim, kernel_size, dilation_rate=d, padding="causal", dtype=policy,
                name=f"conv_{i}"))
            setattr(self, f"mix_{i}", keras.layers.Dense(hidden_dim, dtype=policy,
                                                         name=f"mix_{i}"))
        self.drop = keras.layers.Dropout(dropout, dtype=policy)
        self.projection = keras.layers.Dense(vocab_size, dtype=policy, name="projection")

    @property
    def blocks(self) -> list[tuple[keras.layers.Layer, keras.layers.Layer]]:
        """(dilated convolution, 1×1 mix) of each residual block."""
        return [(getattr(self, f"conv_{i}"), getattr(self, f"mix_{i}"))
                for i in range(len(self.dilations))]

    @property
    def receptive_field(self) -> int:
        """Number of input positions (current and previous) that logits at t can depend on."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def build(self, inputs_shape, z_shape=None):
        """Creates every weight: the input (and, with skip connections, each block's and the
        output) projection's width grows by the latent's."""
        latent = 0 if z_shape is None else z_shape[-1]
        skip = latent if self.skip_connections else 0
        batch_time = tuple(inputs_shape)
        self.embedding.build(batch_time)
        self.input_projection.build(batch_time + (self.embed_dim + latent,))
        for conv, mix in self.blocks:
            conv.build(batch_time + (self.hidden_dim + skip,))
            mix.build(batch_time + (self.hidden_dim,))
        self.projection.build(batch_time + (self.hidden_dim + skip,))
        self.built = True

    @staticmethod
    def _with_latent(h, z):
        # h: [B, T, D], z: [B, Z] -> [B, T, D + Z]
        z_seq = tf.tile(tf.expand_dims(tf.cast(z, h.dtype), 1), [1, tf.shape(h)[1], 1])
        return tf.concat([h, z_seq], axis=-1)

    def call(self, inputs, z=None, mask=None, training=None):
        del mask  # causal: padding at the end of a row cannot reach real positions
        u = self.drop(self.embedding(inputs), training=training)  # [B, T, E]
        if z is not None:
            u = self._with_latent(u, z)
        h = self.input_projection(u)  # [B, T, H]
        for conv, mix in self.blocks:
            block_input = tf.nn.relu(h)
            if z is not None and self.skip_connections:
                block_input = self._with_latent(block_input, z)
            h = h + self.drop(mix(tf.nn.relu(conv(block_input))), training=training)  # [B, T, H]
        if z is not None and self.skip_connections:
            h = self._with_latent(h, z)
        return self.projection(h)  # [B, T, V]

    def sample(self, start_ids, max_length: int, z=None, temperature: float = 1.0, seed=None):
        """Ancestral sampling, x_t ~ softmax(logits_t / temperature), one token at a time
        (`tflv.decoding.sample_tokens`; temperature 0: greedy, x_t = argmax logits_t).

        The whole prefix buffer `(N, max_length)` is re-run at each step (later positions hold
        placeholders that causality hides), which keeps every shape static.

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
        start_ids = tf.cast(start_ids, tf.int32)
        n = tf.shape(start_ids)[0]
        positions = tf.range(max_length)
        buffer = tf.concat([start_ids[:, None], tf.zeros([n, max_length - 1], tf.int32)], axis=1)

        def step(buffer, t):
            logits = self(buffer, z=z)  # [N, L, V]
            draw = sample_tokens(logits[:, t], temperature, seed + tf.stack([0, t]))  # [N]
            write = tf.equal(positions, t + 1)[None, :]  # [1, L]: the next input position
            return tf.where(write, draw[:, None], buffer), draw

        _, tokens = tf.scan(lambda carry, t: step(carry[0], t), positions,
                            initializer=(buffer, tf.zeros([n], tf.int32)))
        return tf.transpose(tokens)  # [N, max_length]

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embed_dim=self.embed_dim,
                      hidden_dim=self.hidden_dim, kernel_size=self.kernel_size,
                      dilations=self.dilations, dropout=self.dropout,
                      skip_connections=self.skip_connections)
        return config
