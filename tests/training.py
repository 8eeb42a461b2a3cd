"""Training helper for model tests: Adam on the mean of a model's `objective` loss."""
import keras
import tensorflow as tf


def adam_step(model, learning_rate: float):
    """A compiled `step(batch) -> loss`: one Adam update of `model` on the mean
    `model.objective(batch, training=True).loss`; returns that loss (before the update)."""
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(batch, training=True).loss)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step
