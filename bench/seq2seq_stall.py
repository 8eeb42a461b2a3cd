"""Why the Multi30k encoder–decoders stalled at the unigram entropy: one decoder, four wirings.

    python bench/seq2seq_stall.py [--steps=500] [--wirings=direct,no_encoder,stopped,full]
                                  [--output_bias=zero,unigram]

Each wiring trains a fresh `tflv.models.seq2seq.EncoderDecoder` (soft attention, E = H = 64) on
Multi30k En→De with Adam and global-norm clipping 5, batch 32, and prints the training loss
(nats per target token) averaged over each 100 steps, and, for the wirings with gradients into
the encoder, the gradient norms of the encoder + bridge and of the rest:

- `direct`: the decoder LSTM (`decode_states`) started from the encoder's state, its states fed
  straight into the output projection (no combination layer, no attention);
- `no_encoder`: the decoder from a zero state, through the tanh combination layer `combine` with a
  zero context, into the projection (no encoder in the graph);
- `stopped`: as `full` but the encoder's outputs under `tf.stop_gradient`;
- `full`: the model's own training loss, `objective(batch, training=True)`.

Each wiring runs once per `--output_bias`: `zero` (the projection's bias starts at 0, as the
model's did before) and `unigram` (it starts at the training targets' log unigram frequencies,
`tflv.models.unigram`, as `EncoderDecoder.from_corpus` now does). The script also prints the share
of the combination layer's outputs beyond |0.99| on a fresh batch every 100 steps.

The unigram entropy of the German training side is 5.81 nats per token.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import data  # noqa: E402
from tflv.layers.attention import soft_context  # noqa: E402
from tflv.models.seq2seq import EncoderDecoder  # noqa: E402
from tflv.models.unigram import log_frequencies, token_counts  # noqa: E402

WIRINGS = ("direct", "no_encoder", "stopped", "full")
OUTPUT_BIASES = ("zero", "unigram")


def token_loss(batch, logits):
    """Mean over rows of the per-token NLL: logits [B, T, V] → scalar."""
    mask = tf.cast(batch["target_mask"], tf.float32)
    log_probs = tf.gather(tf.nn.log_softmax(logits), tf.cast(batch["target_targets"], tf.int32),
                          batch_dims=2)
    return tf.reduce_mean(-tf.reduce_sum(log_probs * mask, 1) / tf.reduce_sum(mask, 1))


def saturation(model, batch):
    """Share of the combination layer's outputs beyond |0.99| on `batch` (soft attention)."""
    state = model.encode(batch["source"], batch["source_mask"])
    h, _, _ = model.decode_states(batch["target_inputs"], state, batch["target_mask"])
    context = soft_context(model.log_alignment(h, state), state["memory"])
    combined = model.combine(tf.concat([h, context], axis=-1))
    return float(tf.reduce_mean(tf.cast(tf.abs(combined) > 0.99, tf.float32)))


def loss_fn(model, wiring, batch):
    """The training loss of one wiring (module docstring)."""
    if wiring == "full":
        return tf.reduce_mean(model.objective(batch, training=True).loss)
    mask = tf.cast(batch["target_mask"], tf.float32)
    state = model.encode(batch["source"], batch["source_mask"], training=True)
    if wiring == "no_encoder":
        zeros = tf.zeros_like(state["h"])
        state = {**state, "h": zeros, "c": zeros}
    if wiring == "stopped":
        state = {k: tf.stop_gradient(v) for k, v in state.items()}
    h, _, _ = model.decode_states(batch["target_inputs"], state, mask, training=True)
    if wiring == "direct":
        return token_loss(batch, model.projection(h))
    if wiring == "no_encoder":
        context = tf.zeros(tf.concat([tf.shape(h)[:-1], tf.shape(state["memory"])[-1:]], 0))
    else:
        context = soft_context(model.log_alignment(h, state), state["memory"])
    return token_loss(batch, model.output_logits(h, context))


def run(wiring: str, output_bias: np.ndarray | None, corpus, args) -> None:
    keras.utils.set_random_seed(args.seed)
    batches = iter(corpus.dataset("train", "parallel", args.batch_size, shuffle=True,
                                  seed=args.seed, repeat=True, max_length=20))
    model = EncoderDecoder(corpus.info["source_vocab_size"], corpus.info["target_vocab_size"],
                           "soft", args.dim, args.dim, output_bias=output_bias)
    bias_name = "zero" if output_bias is None else "unigram"
    model.objective(next(batches))  # builds every layer
    optimizer = keras.optimizers.Adam(args.learning_rate, global_clipnorm=5.0)
    variables = model.trainable_variables
    encoder = [v.path.startswith(("encoder", "bridge")) for v in variables]

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(model, wiring, batch)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients((g, v) for g, v in zip(grads, variables) if g is not None)
        norm = lambda part: tf.linalg.global_norm(
            [g for g, e in zip(grads, encoder) if g is not None and e == part] or [0.0])
        return loss, norm(True), norm(False)

    losses = []
    for i in range(1, args.steps + 1):
        loss, encoder_norm, rest_norm = step(next(batches))
        losses.append(float(loss))
        if i % 100 == 0:
            print(f"{wiring} bias {bias_name} step {i}  loss {sum(losses[-100:]) / 100:.3f}  "
                  f"grad norm encoder {float(encoder_norm):.2e} rest {float(rest_norm):.2e}  "
                  f"saturated {saturation(model, next(batches)):.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wirings", default=",".join(WIRINGS))
    parser.add_argument("--output_bias", default=",".join(OUTPUT_BIASES))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, known in (("wirings", WIRINGS), ("output_bias", OUTPUT_BIASES)):
        for value in getattr(args, name).split(","):
            if value not in known:
                parser.error(f"unknown --{name} {value!r}; known: {', '.join(known)}")
    corpus = data.load("multi30k")
    unigram = log_frequencies(token_counts(corpus.dataset("train", "parallel", 1024),
                                           corpus.info["target_vocab_size"], "target_targets",
                                           "target_mask"))
    for bias in args.output_bias.split(","):
        for wiring in args.wirings.split(","):
            run(wiring, unigram if bias == "unigram" else None, corpus, args)


if __name__ == "__main__":
    main()
