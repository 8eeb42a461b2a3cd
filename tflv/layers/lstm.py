"""An LSTM that multiplies every step's input by its kernel in one matrix product.

Keras' `keras.layers.LSTM` on a CPU (no cuDNN) runs its cell once per step, so each step
multiplies that step's input x_t [B, D] by the input kernel W [D, 4H] inside the recursion:
T small products on the sequential path, each one re-read from memory. The inputs do not
depend on the recursion, so their projections can all be made first, as one [B·T, D] × [D, 4H]
product (as PyTorch's and cuDNN's LSTMs do), leaving only the recurrent product in the loop
(Hochreiter & Schmidhuber 1997; the gate layout of Keras, i, f, c, o):

    a_t = x_t W + b                        for all t at once           [B, T, 4H]
    [i, f, g, o]_t = a_t + h_{t−1} U
    c_t = σ(f_t) ⊙ c_{t−1} + σ(i_t) ⊙ tanh(g_t),   h_t = σ(o_t) ⊙ tanh(c_t)

(σ, tanh: the cell's `recurrent_activation` and `activation`). Same weights, same variables
and names, same masking, `go_backwards`, initial state and outputs as `keras.layers.LSTM`, so
checkpoints and `keras.layers.Bidirectional` work unchanged; the result equals Keras' to
float round-off. The training step of an LSTM model is 10–30 % faster on 2 CPU cores, with or
without XLA (`bench/throughput.py`, BENCHMARKS "Throughput"). Where Keras' own fast path
applies (cuDNN on a GPU) or the layer has input or recurrent dropout inside the cell (which
this projection would not apply per step), it defers to `keras.layers.LSTM`.

Example:
>>> import tensorflow as tf
>>> import keras
>>> from tflv.layers.lstm import LSTM
>>> x = tf.random.stateless_normal([2, 5, 3], seed=[1, 2])
>>> ours, theirs = LSTM(4, return_sequences=True), keras.layers.LSTM(4, return_sequences=True)
>>> _, _ = ours(x), theirs(x)
>>> ours.set_weights(theirs.get_weights())
>>> bool(tf.reduce_max(tf.abs(ours(x) - theirs(x))) < 1e-6)
True
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tflv")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection of all steps done before the recursion.

    Takes `keras.layers.LSTM`'s arguments and call arguments (`inputs` `[B, T, D]`, `mask`
    `[B, T]`, `initial_state`, `training`) and returns what it returns.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        per_step_dropout = training and (cell.dropout or cell.recurrent_dropout)
        if per_step_dropout or (self.use_cudnn in ("auto", True)
                                and tf.config.list_logical_devices("GPU")):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        kernel = tf.cast(cell.kernel, sequences.dtype)
        projected = tf.einsum("btd,dk->btk", sequences, kernel)  # [B, T, 4H]
        if cell.use_bias:
            projected += tf.cast(cell.bias, sequences.dtype)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        return recurrence(cell, projected, list(initial_state), go_backwards=self.go_backwards,
                          mask=mask, unroll=self.unroll,
                          zero_output_for_mask=self.zero_output_for_mask,
                          return_all_outputs=self.return_sequences)


def recurrence(cell: keras.layers.LSTMCell, projected, initial_state, **rnn_options):
    """The recursion of `cell` over inputs already multiplied by its kernel (bias included):
    projected [B, T, 4H] (a_t above), initial_state [h_0, c_0] ([B, H] each) →
    `keras.src.backend.rnn`'s (last output, outputs [B, T, H], last states), taking its options
    (`mask`, `go_backwards`, `unroll`, …). A caller whose inputs share parts across rows (e.g.
    the same word under several segment decoders, `tflv.models.neural_template`) projects each
    part once and adds them.
    """
    recurrent_kernel = tf.cast(cell.recurrent_kernel, projected.dtype)
    activation, gate = cell.activation, cell.recurrent_activation

    def step(projected_t, states):
        h, c = states
        z = projected_t + tf.matmul(h, recurrent_kernel)  # [B, 4H]
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = gate(f) * c + gate(i) * activation(g)
        h = gate(o) * activation(c)
        return h, [h, c]

    return keras.src.backend.rnn(step, projected, list(initial_state),
                                 input_length=projected.shape[1], **rnn_options)
