"""Forms: the batch dicts a corpus offers, each one builder over the corpus' parsed splits.

A *form builder* is `build(split, batching, **form_options) -> tf.data.Dataset`. Writing a sentence
w_1..w_n as ids, the forms are

    stream     inputs / targets: consecutive windows of the token stream (see `pipeline`)
    sentences  inputs = <bos> w_1..w_n,  targets = w_1..w_n <eos>,  lengths = n + 1
    tokens     tokens = w_1..w_n,  lengths = n         (+ aligned tag sequences: the `tagged` form)
    parallel   source = x_1..x_m;  target_inputs = <bos> y_1..y_n,  target_targets = y_1..y_n <eos>
    bow        counts[v] = #{i : w_i = v}

each with float32 prefix masks. Options of the sequence forms: `max_length` (sentences with more
than `max_length` words, on either side for `parallel`, are dropped from `train` only; evaluation
splits keep every example, and both cases are logged), `pad_to` (static padded length, for XLA),
`bucket_boundaries` (length bucketing).

#### References
Bowman et al. (2016), "Generating Sentences from a Continuous Space" (sentences with <bos>/<eos>);
Bahdanau, Cho & Bengio (2015), "Neural Machine Translation by Jointly Learning to Align and
Translate" (the parallel form).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
from absl import logging

from data import pipeline
from data.pipeline import Batching, Field, Sequences
from data.vocab import BOS_ID, EOS_ID

FormBuilder = Callable[..., tf.data.Dataset]
TRAIN = "train"


def stream(streams: Mapping[str, np.ndarray]) -> FormBuilder:
    """The `stream` form over one token stream (int [N]) per split; option `seq_len` (35)."""

    def build(split: str, batching: Batching, seq_len: int = 35) -> tf.data.Dataset:
        return pipeline.stream_batches(streams[split], batching, seq_len)

    return build


def sentences(words: Mapping[str, Sequences]) -> FormBuilder:
    """The `sentences` form: `inputs`, `targets`, `lengths`, `mask` (see the module docstring)."""

    def fields(split: str) -> tuple[dict[str, Field], np.ndarray]:
        w = words[split]
        return {"inputs": w.wrap(prefix=BOS_ID), "targets": w.wrap(suffix=EOS_ID),
                "lengths": w.lengths + 1}, w.lengths

    return _sequence_form(fields, {"mask": ("lengths", "inputs")})


def tokens(words: Mapping[str, Sequences],
           tags: Mapping[str, Mapping[str, Sequences]] | None = None) -> FormBuilder:
    """The `tokens` form (`tokens`, `lengths`, `mask`), or with `tags` the `tagged` form.

    Args:
      words: per split, the sentences' word ids.
      tags: per field name (e.g. `"tags"`, `"chunks"`), per split, sequences aligned with `words`.
    """

    def fields(split: str) -> tuple[dict[str, Field], np.ndarray]:
        w = words[split]
        extra = {name: per_split[split] for name, per_split in (tags or {}).items()}
        return {"tokens": w, "lengths": w.lengths, **extra}, w.lengths

    return _sequence_form(fields, {"mask": ("lengths", "tokens")})


def parallel(source: Mapping[str, Sequences], target: Mapping[str, Sequences],
             target_extras: Mapping[str, Mapping[str, Sequences]] | None = None) -> FormBuilder:
    """The `parallel` form of aligned source and target sentences (see the module docstring).

    Args:
      target_extras: per field name, per split, sequences aligned with `target_targets` (one
        value per target word and one for `<eos>`), batched beside it (padded with 0).
    """

    def fields(split: str) -> tuple[dict[str, Field], np.ndarray]:
        x, y = source[split], target[split]
        extra = {name: per_split[split] for name, per_split in (target_extras or {}).items()}
        for name, values in extra.items():
            if not np.array_equal(values.lengths, y.lengths + 1):
                raise ValueError(f"target extra {name!r} of split {split!r} is not aligned with "
                                 f"the targets (one value per word and one for <eos>)")
        return {"source": x, "source_lengths": x.lengths,
                "target_inputs": y.wrap(prefix=BOS_ID), "target_targets": y.wrap(suffix=EOS_ID),
                "target_lengths": y.lengths + 1, **extra}, np.maximum(x.lengths, y.lengths)

    return _sequence_form(fields, {"source_mask": ("source_lengths", "source"),
                                   "target_mask": ("target_lengths", "target_inputs")})


def bow(documents: Mapping[str, tuple[Sequences, np.ndarray, np.ndarray]],
        vocab_size: int) -> FormBuilder:
    """The `bow` form over, per split, (word ids `Sequences`, counts [Σ], labels [D])."""

    def build(split: str, batching: Batching) -> tf.data.Dataset:
        indices, counts, labels = documents[split]
        return pipeline.bow_batches(indices, counts, labels, vocab_size, batching)

    return build


def _sequence_form(fields_of: Callable[[str], tuple[dict[str, Field], np.ndarray]],
                   masks: Mapping[str, tuple[str, str]]) -> FormBuilder:
    """A builder with the options `max_length`, `pad_to`, `bucket_boundaries`.

    Args:
      fields_of: split → (fields for `pipeline.sequence_batches`, int [N] word counts compared
        with `max_length`).
      masks: as in `pipeline.sequence_batches`.
    """

    def build(split: str, batching: Batching, max_length: int | None = None,
              pad_to: int | None = None,
              bucket_boundaries: list[int] | None = None) -> tf.data.Dataset:
        fields, lengths = fields_of(split)
        if max_length is not None:
            if not isinstance(max_length, (int, np.integer)) or max_length < 1:
                raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
            too_long = lengths > max_length
            if split == TRAIN:
                logging.info("max_length=%d: dropping %d of %d training examples (evaluation "
                             "splits keep all)", max_length, too_long.sum(), len(lengths))
                fields = {name: f.select(~too_long) if isinstance(f, Sequences) else f[~too_long]
                          for name, f in fields.items()}
            else:
                logging.info("max_length=%d is not applied to split %r: evaluation keeps all %d "
                             "examples (%d longer)", max_length, split, len(lengths),
                             too_long.sum())
        return pipeline.sequence_batches(fields, batching, masks, pad_to, bucket_boundaries)

    return build
