"""A model-side copy of the training step t, for schedules β(t) and stateless noise seeds.

The trainer's optimizer counts its updates in `optimizer.iterations`, but a model does not see
its optimizer. Models whose objective depends on t (KL annealing, Bowman et al. 2016) or that
draw noise (reparameterized or score-function samples) own a `TrainingStep`: a non-trainable
int64 counter that `objective(training=True)` reads and then increments once per update, so it
equals `optimizer.iterations` at the start of every step. It is a model variable, so checkpoints
carry it and a resumed run continues the same schedule and the same noise. Under `tf.distribute`
it is mirrored with `ONLY_FIRST_REPLICA` aggregation: every replica increments it, it advances
by one per step.

Noise is drawn with stateless seeds (t, salt): the same step and salt give the same draws, so
runs are reproducible and resumption is exact; evaluation (t not incremented) reuses one seed.

#### References
- Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016). Generating Sentences from a
  Continuous Space (KL annealing as a function of the step).
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tflv")
class TrainingStep(keras.layers.Layer):
    """A non-trainable step counter t with stateless seeds derived from it.

    Examples:
    >>> from tflv.vi import schedules
    >>> step = TrainingStep()
    >>> step.increment(); step.increment()   # once per training update
    >>> round(float(schedules.linear_kl_weight(step.value, warmup_steps=1000)), 6)  # β(t) = t / 1000
    0.002
    >>> step.seed(1).numpy()                 # the stateless seed (t, salt) of this step's noise
    array([2, 1], dtype=int32)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = self.add_weight(name="count", shape=(), dtype="int64", initializer="zeros",
                                     trainable=False, aggregation="only_first_replica")
        self.built = True

    @property
    def value(self) -> tf.Tensor:
        """t, int64 scalar."""
        return tf.convert_to_tensor(self.count)

    def seed(self, salt: int | tf.Tensor) -> tf.Tensor:
        """int32 `[2]` stateless seed (t, salt)."""
        return tf.stack([tf.cast(self.count, tf.int32), tf.cast(salt, tf.int32)])

    def increment(self) -> None:
        self.count.assign_add(1)

    def call(self, inputs):
        return inputs
