"""One helper every layer test uses (after KerasHub's `run_layer_test`).

`run_layer_test` checks, for a tflv Keras layer: config round-trip (`get_config` /
`from_config`), registration for serialization (`keras.saving.serialize_keras_object` and back),
build and eager call, a symbolic call inside a functional model, equal outputs after a
`.keras` save / load, and one `fit` step that changes the trainable weights.
"""
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


def _flat(x):
    return [np.asarray(t) for t in tf.nest.flatten(x)]


def run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape=None,
                   call_kwargs=None, run_fit=True, atol=1e-5):
    """Runs the conformance checks for one layer; returns the eager output.

    Args:
      layer_cls: the layer class.
      init_kwargs: constructor keyword arguments.
      input_data: a tensor or a tuple/list/dict of tensors (the layer's first call argument).
      expected_output_shape: a shape tuple (or a nest of them) the eager output must have.
      call_kwargs: extra call keyword arguments (e.g. `training=False`).
      run_fit: whether to train one step with `model.fit` on the output's mean square.
      atol: tolerance for the save/load comparison.
    """
    call_kwargs = dict(call_kwargs or {})
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"{layer_cls.__name__}.get_config() lacks constructor argument {key!r}"
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config, "config does not round-trip"
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is layer_cls, "layer is not registered serializable"

    output = layer(input_data, **call_kwargs)
    if expected_output_shape is not None:
        got = tf.nest.map_structure(lambda t: tuple(t.shape), output)
        assert got == expected_output_shape, f"output shape {got} != {expected_output_shape}"

    inputs = tf.nest.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, batch_size=t.shape[0]), input_data)
    symbolic_layer = layer_cls(**init_kwargs)
    symbolic_output = symbolic_layer(inputs, **call_kwargs)
    model = keras.Model(inputs, symbolic_output)
    model_out = model(input_data)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        for a, b in zip(_flat(model_out), _flat(reloaded(input_data))):
            np.testing.assert_allclose(a, b, atol=atol)

    if run_fit and model.trainable_weights:
        fit_model = keras.Model(inputs, keras.tree.flatten(symbolic_output)[0])
        before = [w.numpy().copy() for w in fit_model.trainable_weights]
        fit_model.compile(optimizer=keras.optimizers.SGD(0.1),
                          loss=lambda y, p: tf.reduce_mean(tf.square(tf.cast(p, tf.float32))))
        first = tf.nest.flatten(model_out)[0]
        fit_model.fit(input_data, tf.zeros_like(first), epochs=1, batch_size=first.shape[0],
                      verbose=0)
        changed = any(not np.allclose(b, w.numpy())
                      for b, w in zip(before, fit_model.trainable_weights))
        assert changed, "one fit step did not change any trainable weight"
    return output
