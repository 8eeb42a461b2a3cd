"""Mixed precision: where a half-precision computation must return to float32.

Under a mixed-precision Keras policy (`mixed_bfloat16`, `mixed_float16`) layers compute and
return half-precision tensors while their variables stay float32. What becomes a
log-probability, a softmax or logsumexp, a KL term or the input of a structured recursion is cast
back to float32 first, so that those — and the loss — are computed in single precision
(Micikevicius et al. 2018, "Mixed Precision Training", ICLR: the reductions and losses stay in
single precision). bfloat16 has float32's exponent range, so it needs no loss scaling.

#### References
- Micikevicius, Narang, Alben, Diamos, Elsen, Garcia, Ginsburg, Houston, Kuchaiev, Venkatesh &
  Wu (2018). Mixed Precision Training. ICLR.
"""
from __future__ import annotations

import tensorflow as tf

HALF_PRECISION = (tf.bfloat16, tf.float16)


def full_precision(structure):
    """`structure` (a tensor or a nest of them) with every half-precision float tensor
    (bfloat16, float16) cast to float32; other tensors (float32, float64, integers) as they are.

        >>> cast = full_precision({"logits": tf.zeros([2], tf.bfloat16),
        ...                        "ids": tf.zeros([2], tf.int32)})
        >>> cast["logits"].dtype.name, cast["ids"].dtype.name
        ('float32', 'int32')
    """
    return tf.nest.map_structure(
        lambda t: tf.cast(t, tf.float32) if getattr(t, "dtype", None) in HALF_PRECISION else t,
        structure)
