"""Input checks shared by the chain distributions: batch-shape broadcasting, masks, token ids.

Shapes are checked when the graph is built wherever they are static (a `ValueError` naming the
argument and its shape); values, and shapes only known at run time, by `tf.debugging`
assertions (an `InvalidArgumentError` with the same kind of message). XLA drops assertions,
so under `jit_compile=True` only the static checks remain.

A batch is flattened for the dynamic programs and unflattened for the results, with the batch
shapes of all arguments broadcast as in TFP distributions: the batch shape of a tensor with
`event_rank` trailing event axes is `shape[:-event_rank]`.

#### References

Dillon, J. V. et al. (2017). TensorFlow Distributions. arXiv:1711.10604 (batch and event
shapes).
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def float_tensor(value, dtype: tf.DType | None = None, name: str = "value") -> tf.Tensor:
    """A floating tensor: `dtype` if given, else the value's own float dtype, else float32."""
    if dtype is None:
        own = getattr(value, "dtype", None)
        own = tf.as_dtype(own) if own is not None else tf.float32
        dtype = own if own.is_floating else tf.float32
    return tf.convert_to_tensor(value, dtype=dtype, name=name)


def known_rank(t: tf.Tensor, name: str, min_rank: int) -> int:
    rank = t.shape.rank
    if rank is None:
        raise ValueError(f"{name} must have a known rank (got a tensor of unknown rank)")
    if rank < min_rank:
        raise ValueError(f"{name} must have rank >= {min_rank}, got shape {t.shape}")
    return rank


def after(checks: Sequence, *tensors):
    """`tensors` (None passes through), computed only once the assertions `checks` have passed.

    Inside a graph an assertion runs at some point of the step, not necessarily before the ops
    its inputs feed: without this, a bad shape could fail first in a matmul, with that op's
    message instead of ours. Eagerly, assertions have already raised (they return None).
    """
    checks = [c for c in checks if c is not None]
    if not checks:
        return tensors
    with tf.control_dependencies(checks):
        return tuple(None if t is None else tf.identity(t) for t in tensors)


def same_size(sizes: Sequence[tuple[str, tf.Tensor, int]], what: str,
              validate_args: bool) -> list:
    """Checks that axis `axis` of each (name, tensor, axis) has one size; returns the run-time
    assertions (for `after`)."""
    known = [(name, t.shape[axis]) for name, t, axis in sizes if t.shape[axis] is not None]
    if len({size for _, size in known}) > 1:
        listed = ", ".join(f"{name} has {size}" for name, size in known)
        raise ValueError(f"mismatched {what}: {listed}")
    if not validate_args:
        return []
    name0, t0, axis0 = sizes[0]
    return [tf.debugging.assert_equal(tf.shape(t)[axis], tf.shape(t0)[axis0],
                                      message=f"mismatched {what}: {name} and {name0} differ")
            for name, t, axis in sizes[1:]]


class BatchShape:
    """The broadcast batch shape of several (name, tensor, event_rank) arguments."""

    def __init__(self, parts: Sequence[tuple[str, tf.Tensor, int]]):
        self.static = tf.TensorShape([])
        self.dynamic = tf.constant([], tf.int32)
        for name, t, event_rank in parts:
            rank = known_rank(t, name, event_rank)
            shape = t.shape[:rank - event_rank]
            try:
                self.static = tf.broadcast_static_shape(self.static, shape)
            except ValueError:
                raise ValueError(f"the batch shape {shape} of {name} (shape {t.shape}) does not "
                                 f"broadcast with the other arguments' {self.static}") from None
            self.dynamic = tf.broadcast_dynamic_shape(self.dynamic, tf.shape(t)[:rank - event_rank])

    def flatten(self, t: tf.Tensor, event_rank: int) -> tf.Tensor:
        """[*batch', *event] (batch' broadcastable to the batch) -> [B, *event]."""
        rank = t.shape.rank
        event = tf.shape(t)[rank - event_rank:]
        event_static = t.shape[rank - event_rank:]
        if not (t.shape[:rank - event_rank] == self.static and self.static.is_fully_defined()):
            t = tf.broadcast_to(t, tf.concat([self.dynamic, event], axis=0))
        flat = tf.reshape(t, tf.concat([[-1], event], axis=0))
        return tf.ensure_shape(
            flat, tf.TensorShape([self.static.num_elements()]).concatenate(event_static))

    def unflatten(self, t: tf.Tensor, sample_rank: int = 0) -> tf.Tensor:
        """[*sample, B, *event] -> [*sample, *batch, *event]."""
        shape = tf.shape(t)
        out = tf.reshape(t, tf.concat([shape[:sample_rank], self.dynamic,
                                       shape[sample_rank + 1:]], axis=0))
        static = t.shape[:sample_rank].concatenate(self.static).concatenate(
            t.shape[sample_rank + 1:])
        return tf.ensure_shape(out, static)


def as_mask(mask, like: tf.Tensor, name: str = "mask") -> tf.Tensor | None:
    """bool/float/int mask -> bool, with its time axis checked against `like`'s last axis."""
    if mask is None:
        return None
    mask = tf.convert_to_tensor(mask)
    if mask.dtype != tf.bool:
        mask = tf.not_equal(mask, tf.zeros([], mask.dtype))
    known_rank(mask, name, 1)
    steps, expected = mask.shape[-1], like.shape[-1]
    if steps is not None and expected is not None and steps != expected:
        raise ValueError(f"{name} has {mask.shape[-1]} positions (shape {mask.shape}) but the "
                         f"sequences have T={like.shape[-1]}")
    return mask


def assert_prefix_mask(mask: tf.Tensor | None, validate_args: bool, name: str = "mask") -> list:
    """Asserts that each row of a bool [..., T] mask is true on a prefix and false after."""
    if mask is None or not validate_args:
        return []
    as_int = tf.cast(mask, tf.int32)
    return [tf.debugging.assert_greater_equal(
        as_int[..., :-1], as_int[..., 1:],
        message=f"{name} must be a prefix per row (true for the first `length` positions, "
                f"false after)")]


def assert_tokens(x: tf.Tensor, mask: tf.Tensor | None, vocab_size: tf.Tensor,
                  validate_args: bool, name: str = "x") -> list:
    """Asserts 0 <= x < vocab_size at the real (unmasked) positions of int x [..., T]."""
    if not x.dtype.is_integer:
        raise TypeError(f"{name} must hold integer token ids, got dtype {x.dtype.name}")
    if not validate_args:
        return []
    real = x if mask is None else tf.where(mask, x, tf.zeros_like(x))
    return [tf.debugging.assert_non_negative(real, message=f"{name} (token ids) must be >= 0"),
            tf.debugging.assert_less(real, tf.cast(vocab_size, x.dtype),
                                     message=f"{name} (token ids) must be < the vocabulary size "
                                             f"V (the last axis of the emission logits)")]
