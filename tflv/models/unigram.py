"""The training targets' log unigram frequencies, the starting value of a softmax output bias.

A word-level decoder softmax(W φ(h) + b) first learns the unigram distribution p̂(v). From b = 0
Adam moves each b_v by about one learning rate per step, so the bias needs hundreds of steps to
reach log p̂(v) (−2 … −13 over a 10k vocabulary). The faster route runs through the hidden layers:
their tanh units saturate into a constant code whose projection spells the unigram out, and
saturated units pass almost no gradient. Measured on Multi30k (`bench/seq2seq_stall.py`): with
b = 0, every output of the encoder–decoder's tanh combination layer lies beyond |0.99| from step
100 on and the loss sits at the unigram entropy (for 2,000 steps in a trainer run); started as
below, 14–43% do and the loss falls from 5.4 to 4.3 nats per token by step 500. Starting from

    b_v = log (c_v + ½) / Σ_u (c_u + ½),   c_v = #{target tokens equal to v in the training split},

the model predicts p̂ at step 0, and the hidden layers learn only what the context adds.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import keras
import numpy as np


def token_counts(batches: Iterable[Mapping], vocab_size: int, targets: str = "targets",
                 mask: str = "mask") -> np.ndarray:
    """c_v: how often each id occurs among the masked-in `batches[targets]`: float64 [V].

    Args:
      batches: dicts with int ids `targets` [B, T] and a 0/1 `mask` [B, T].
      vocab_size: V; every masked-in id must lie in [0, V).
    """
    counts = np.zeros(vocab_size)  # [V]
    for batch in batches:
        ids = np.asarray(batch[targets])[np.asarray(batch[mask]) > 0]
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            bad = ids[(ids < 0) | (ids >= vocab_size)][0]
            raise ValueError(f"`{targets}` holds id {bad}, outside the vocabulary [0, {vocab_size})")
        counts += np.bincount(ids, minlength=vocab_size)
    return counts


def log_frequencies(counts: np.ndarray, smoothing: float = 0.5) -> np.ndarray:
    """log (c_v + smoothing) / Σ_u (c_u + smoothing): counts [V] → float64 [V]."""
    smoothed = np.asarray(counts, np.float64) + smoothing
    return np.log(smoothed / smoothed.sum())


def bias_initializer(output_bias, vocab_size: int, size_name: str = "vocab_size"):
    """A Keras initializer of a [V] output bias: zeros for None, else `output_bias` [V]."""
    if output_bias is None:
        return "zeros"
    if len(output_bias) != vocab_size:
        raise ValueError(f"output_bias has {len(output_bias)} entries, expected "
                         f"{size_name}={vocab_size}")
    return keras.initializers.Constant(np.asarray(output_bias, np.float32))
