"""`import tflv.layers` registers and exports every layer of the package, and each reloads from
a `.keras` file in a fresh process that imported `tflv.layers` (not `tflv.models`).

The layers are found, not listed: every class in Keras's registry under the `tflv>` package whose
module is in `tflv.layers`, after importing every module of tflv. A new registered layer without
an entry in EXAMPLES fails `test_every_registered_layer_is_exported`.
"""
import importlib
import os
import pkgutil
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

import tflv

RNG = np.random.default_rng(0)
TOKENS = tf.constant([[2, 5, 7, 4], [2, 1, 3, 0]], tf.int32)
FEATURES = tf.constant(RNG.normal(size=(2, 5)), tf.float32)
B, T, K = 2, 4, 3
POTENTIALS = [tf.constant(RNG.normal(size=s), tf.float32)
              for s in ((B, K), (B, T - 1, K, K), (B, T, K))]

# Registered layer → (constructor arguments, the first call argument).
EXAMPLES = {
    "Attention": (dict(units=4), (tf.constant(RNG.normal(size=(2, 3, 4)), tf.float32),
                                  tf.constant(RNG.normal(size=(2, 5, 6)), tf.float32),
                                  tf.constant([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], tf.float32))),
    "AutoregressiveNetwork": (dict(event_size=4, hidden_units=[8]),
                              tf.constant(RNG.normal(size=(2, 4)), tf.float32)),
    "BagOfWordsEncoder": (dict(hidden_units=[6, 5]),
                          tf.constant(RNG.poisson(1.0, size=(2, 9)), tf.float32)),
    "BaselineHead": (dict(hidden_units=[4]), FEATURES),
    "BlockedNeuralHMM": (dict(num_states=4, word_blocks=[0, 1, 0, 1, 1], num_blocks=2,
                              embed_dim=3), tf.constant([[0, 1], [2, 3]], tf.int32)),
    "CNNDecoder": (dict(vocab_size=9, embed_dim=4, hidden_dim=6, kernel_size=2, dilations=[1, 2]),
                   TOKENS),
    "CategoricalHead": (dict(num_classes=6), FEATURES),
    "ForwardAlgorithm": (dict(semiring="log", pairwise=True, per_step_transitions=True), POTENTIALS),
    "GaussianHead": (dict(latent_dim=4), FEATURES),
    "HMMLogits": (dict(num_states=3, vocab_size=9, num_chains=2, seed=1), TOKENS),
    "GaussianLatent": (dict(kl_weight=0.5, seed=1),
                       (FEATURES, tf.constant(RNG.uniform(0.5, 1.5, size=(2, 5)), tf.float32))),
    "LSTM": (dict(units=3, return_sequences=True),
             tf.constant(RNG.normal(size=(2, 4, 5)), tf.float32)),
    "MeanField": (dict(num_chains=2, num_states=3, vocab_size=9, num_iterations=2), TOKENS),
    "MixtureOfSoftmaxes": (dict(vocab_size=9, num_softmaxes=3),
                           tf.constant(RNG.normal(size=(2, 4, 5)), tf.float32)),
    "MoSDecoder": (dict(vocab_size=9, num_softmaxes=2, embed_dim=4, hidden_dim=6), TOKENS),
    "NeuralHMMLogits": (dict(num_states=3, vocab_size=9, embed_dim=4, hidden_dim=5,
                             transitions="lstm"), TOKENS),
    "NormalizedGaussianHead": (dict(latent_dim=3), FEATURES),
    "PlanarFlowHead": (dict(latent_dim=4, num_flows=2), FEATURES),
    "ResidualMLP": (dict(hidden_dim=6), FEATURES),
    "RNNDecoder": (dict(vocab_size=9, embed_dim=4, hidden_dim=6), TOKENS),
    "SemiMarkov": (dict(semiring="log"), [tf.constant(RNG.normal(size=s), tf.float32)
                                          for s in ((B, K), (B, K, K), (B, T, 2, K))]),
    "RNNEncoder": (dict(vocab_size=9, embed_dim=4, hidden_dim=3, bidirectional=True,
                        return_states=True), TOKENS),
    "TopicDecoder": (dict(vocab_size=9, embed_dim=3), tf.nn.softmax(FEATURES)),
    "TrainingStep": ({}, FEATURES),
    "VMFHead": (dict(latent_dim=4, concentration=20.0), FEATURES),
    "WordDropout": (dict(rate=0.3, seed=1), TOKENS),
}


def registered_layers() -> dict[str, type]:
    """Every `tflv>` class of Keras's registry defined in `tflv.layers`, by class name."""
    for module in pkgutil.walk_packages(tflv.__path__, "tflv."):
        importlib.import_module(module.name)
    return {cls.__name__: cls for key, cls in keras.saving.get_custom_objects().items()
            if key.startswith("tflv>") and cls.__module__.startswith("tflv.layers")}


def test_every_registered_layer_is_exported():
    import tflv.layers
    layers = registered_layers()
    assert set(layers) == set(EXAMPLES), "a registered layer without an example, or vice versa"
    for name, cls in layers.items():
        assert name in tflv.layers.__all__ and getattr(tflv.layers, name) is cls, name


RELOAD = """
import sys
import keras, numpy as np
import tflv.layers  # registers the layers; tflv's models (which register more) are not imported
assert "tflv.models" not in sys.modules
for path in sys.argv[1:]:
    inputs = np.load(path + ".inputs.npz")
    inputs = [inputs[f"arr_{i}"] for i in range(len(inputs.files))]
    expected = np.load(path + ".outputs.npz")
    model = keras.saving.load_model(path, compile=False)
    outputs = keras.tree.flatten(model(inputs if len(inputs) > 1 else inputs[0]))
    assert len(outputs) == len(expected.files), path
    for i, output in enumerate(outputs):
        np.testing.assert_allclose(np.asarray(output), expected[f"arr_{i}"], rtol=1e-5,
                                   atol=1e-6, err_msg=path)
    print("reloaded", path)
"""


def test_every_registered_layer_reloads_from_keras_file_in_a_fresh_process(tmp_path):
    paths = []
    for name, cls in sorted(registered_layers().items()):
        kwargs, data = EXAMPLES[name]
        flat = keras.tree.flatten(data)
        inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, batch_size=t.shape[0])
                  for t in flat]
        layer_inputs = keras.tree.pack_sequence_as(data, inputs)
        model = keras.Model(inputs, cls(**kwargs)(layer_inputs))
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        outputs = keras.tree.flatten(model(flat if len(flat) > 1 else flat[0]))
        np.savez(path + ".inputs.npz", *[np.asarray(t) for t in flat])
        np.savez(path + ".outputs.npz", *[np.asarray(t) for t in outputs])
        paths.append(path)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", RELOAD, *paths], cwd=repo, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("reloaded") == len(EXAMPLES)
