"""tflv layers in a user's own functional Keras model: fit, save `.keras`, reload elsewhere; and
the README's example of it, run verbatim (reload included).

The model is a sentence VAE written with tflv layers alone (the README's example): the reloaded
model, in a fresh process, gives identical outputs; and its loss is the negative ELBO (token NLL
summed per sentence + the closed-form KL that GaussianLatent adds), checked against a direct
computation.
"""
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tflv.layers

V, T, B = 20, 6, 8


def build_vae():
    tokens = keras.Input((T,), dtype="int32", name="tokens")
    decoder_inputs = keras.Input((T,), dtype="int32", name="decoder_inputs")
    features = tflv.layers.RNNEncoder(V, embed_dim=8, hidden_dim=16, name="encoder")(tokens)
    loc, scale = tflv.layers.GaussianHead(4, name="posterior")(features)
    z = tflv.layers.GaussianLatent(seed=1)((loc, scale))
    logits = tflv.layers.RNNDecoder(V, embed_dim=8, hidden_dim=16)(decoder_inputs, z=z)
    return keras.Model([tokens, decoder_inputs], logits)


def sentence_nll(targets, logits):  # summed over tokens: the reconstruction term of the ELBO
    return tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(
        targets, logits, from_logits=True), axis=-1)


def toy_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(4, V, size=(B * 4, T)).astype("int32")
    decoder_inputs = np.concatenate([np.full((B * 4, 1), 2, "int32"), x[:, :-1]], axis=1)
    return x, decoder_inputs


def test_functional_model_fits_saves_and_reloads_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_vae()
    x, decoder_inputs = toy_data()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sentence_nll)
    history = model.fit([x, decoder_inputs], x, batch_size=B, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    # The loss is the negative ELBO: reconstruction + KL in closed form (z = mean at inference).
    loc, scale = model.get_layer("posterior")(model.get_layer("encoder")(x[:B]))
    kl = tfp.distributions.kl_divergence(
        tfp.distributions.MultivariateNormalDiag(loc, scale),
        tfp.distributions.MultivariateNormalDiag(tf.zeros_like(loc)))
    expected = tf.reduce_mean(sentence_nll(x[:B], model([x[:B], decoder_inputs[:B]]))) + \
        tf.reduce_mean(kl)
    got = model.evaluate([x[:B], decoder_inputs[:B]], x[:B], batch_size=B, verbose=0)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4)

    path = tmp_path / "vae.keras"
    model.save(path)
    np.save(tmp_path / "inputs.npy", np.stack([x[:B], decoder_inputs[:B]]))
    np.save(tmp_path / "expected.npy", model([x[:B], decoder_inputs[:B]]).numpy())
    script = f"""
import numpy as np, keras
import tflv.layers  # registers the layers
x, d = np.load({str(tmp_path / 'inputs.npy')!r})
model = keras.saving.load_model({str(path)!r}, compile=False)
np.testing.assert_allclose(model([x, d]).numpy(), np.load({str(tmp_path / 'expected.npy')!r}),
                           rtol=1e-5, atol=1e-6)
print("identical")
"""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "identical" in proc.stdout, proc.stderr[-3000:]


def readme_keras_example() -> str:
    """The first ```python block of README.md's "tflv layers in your own Keras model"."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(repo, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## tflv layers in your own Keras model"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```\n", start)]


def test_readme_keras_example_runs_verbatim_with_its_reload(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo}
    proc = subprocess.run([sys.executable, "-c", readme_keras_example()], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "vae.keras").exists()


def test_functional_vae_fits_under_mixed_bfloat16():
    """Under the global `mixed_bfloat16` policy (runs on CPU) the same model trains with `fit`:
    the layers compute in bfloat16 with float32 weights, GaussianLatent's KL term is float32 and
    equals the closed form on the float32 posterior parameters, and the loss stays finite and
    falls."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = build_vae()
        x, decoder_inputs = toy_data()

        def loss(targets, logits):  # the reconstruction term in float32
            return sentence_nll(targets, tf.cast(logits, tf.float32))

        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
        history = model.fit([x, decoder_inputs], x, batch_size=B, epochs=3, verbose=0)
        losses = history.history["loss"]
        assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
        assert model([x[:B], decoder_inputs[:B]]).dtype == tf.bfloat16
        assert all(w.dtype == "float32" for w in model.weights)
        loc, scale = model.get_layer("posterior")(model.get_layer("encoder")(x[:B]))
        assert loc.dtype == tf.bfloat16
        kl, = model.losses
        assert kl.dtype == tf.float32
        q = tfp.distributions.MultivariateNormalDiag(tf.cast(loc, tf.float32),
                                                     tf.cast(scale, tf.float32))
        expected = tf.reduce_mean(tfp.distributions.kl_divergence(
            q, tfp.distributions.MultivariateNormalDiag(tf.zeros_like(q.mean()))))
        np.testing.assert_allclose(kl.numpy(), expected.numpy(), rtol=1e-5)
    finally:
        keras.mixed_precision.set_global_policy("float32")
