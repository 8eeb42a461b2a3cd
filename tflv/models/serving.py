"""SavedModel signatures that serve raw text, built for every model by the same two functions.

A model's `serving_signatures(batcher) -> {name: tf.function}` adds signatures to the SavedModel
that `tflv.export.export_saved_model` writes. `batcher` (`tflv.export.TextBatcher`) turns strings
into the model's batch inside the graph by the corpus' own text pipeline, `batcher(text [N]) ->
{name: [N, ...]}` for the model's `input_form`, and ids back into strings, `batcher.to_text(ids
[N, L]) -> string [N]`; so every signature takes and returns text, with a fixed `input_signature`:

- `text_signature(batcher, outputs)`: `text string [N] -> outputs(batcher(text))`, an inference
  on each string (tags, posterior marginals, topic proportions, translations, summaries), with
  `unknown_words int32 [N]`, how many words of each string the vocabulary lacks
  (`batcher.unknown_words`).
- `per_text(function, *texts)`: the rule every signature on texts follows for a batch of none,
  N = 0: outputs with 0 rows (the model runs on one empty text, cut away), since Keras's LSTM
  cannot run on an empty batch.
- `sample_signature(batcher, sample)`: `(num_samples, max_length, temperature, seed) ->
  {text string [num_samples]}`, generation; the seed is stateless, so one seed gives one set of
  samples, in memory and after loading alike; temperature 0 decodes greedily
  (`tflv.decoding.sample_tokens`).
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

Signature = tf.types.experimental.PolymorphicFunction  # a tf.function with an input_signature

TEXT = tf.TensorSpec([None], tf.string, name="text")
# The arguments every generation signature takes after its own: length, temperature, seed.
GENERATION = (tf.TensorSpec([], tf.int32, name="max_length"),
              tf.TensorSpec([], tf.float32, name="temperature"),
              tf.TensorSpec([2], tf.int32, name="seed"))


def text_signature(batcher, outputs: Callable[[dict], dict]) -> Signature:
    """`text string [N] -> {**outputs(batcher(text)), unknown_words [N]}`, a dict of tensors
    with leading dimension N."""

    @tf.function(input_signature=[TEXT])
    def serve(text):
        return per_text(lambda text: {**outputs(batcher(text)), **batcher.unknown_words(text)},
                        text)

    return serve


def per_text(function: Callable[..., dict], *texts: tf.Tensor) -> dict:
    """`function(*texts)`, a dict of tensors with leading dimension N, also for N = 0.

    With no texts the function runs on one empty text (of each argument) and its outputs keep
    0 rows: `{name: [0, ...]}`, of the same dtypes and trailing shapes.

    Example:
    >>> per_text(lambda t: {"n": tf.strings.length(t)}, tf.zeros([0], tf.string))["n"].shape
    TensorShape([0])
    """
    n = tf.shape(texts[0])[0]
    extra = tf.maximum(1 - n, 0)  # one empty text when there are none
    outputs = function(*[tf.concat([t, tf.fill([extra], "")], axis=0) for t in texts])
    return {name: value[:n] for name, value in outputs.items()}


def sample_signature(batcher, sample: Callable[..., tf.Tensor]) -> Signature:
    """`(num_samples, max_length, temperature, seed) -> {text string [num_samples]}`.

    Args:
      sample: `sample(start_ids int32 [N], max_length, temperature, seed int32 [2]) -> int
        [N, max_length]`, the model's generator started from `batcher.start` (`<bos>`, or
        `<eos>` for a stream model); each text ends before the first `<eos>`.
    """

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"), *GENERATION])
    def serve(num_samples, max_length, temperature, seed):
        ids = sample(tf.fill([num_samples], batcher.start), max_length, temperature, seed)
        return {"text": batcher.to_text(ids)}

    return serve
