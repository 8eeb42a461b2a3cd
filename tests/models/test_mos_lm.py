"""Mixture of softmaxes: conformance, the exact mixture against enumerating the expert, the softmax
bottleneck (rank), and the MoS language model's likelihood."""
import numpy as np
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.layers.mixture_of_softmaxes import MixtureOfSoftmaxes, MoSDecoder
from tflv.models.mos_lm import MoSLM


def test_conformance():
    run_layer_test(MixtureOfSoftmaxes, dict(vocab_size=7, num_softmaxes=3, latent_dim=4),
                   tf.random.stateless_normal([2, 3, 5], seed=[1, 2]),
                   expected_output_shape=(2, 3, 7))
    run_layer_test(MoSDecoder, dict(vocab_size=7, num_softmaxes=2, embed_dim=4, hidden_dim=5),
                   tf.constant([[2, 4, 6], [2, 1, 0]]), expected_output_shape=(2, 3, 7))


def test_mixture_equals_enumerating_the_expert_in_float64():
    layer = MixtureOfSoftmaxes(vocab_size=6, num_softmaxes=3, latent_dim=4)
    g = tf.random.stateless_normal([5, 8], seed=[3, 4])
    log_p = layer(g).numpy()
    g64 = g.numpy().astype(np.float64)
    w = lambda dense: (dense.kernel.numpy().astype(np.float64), dense.bias.numpy().astype(np.float64))
    (wp, bp), (wl, bl), (wo, bo) = w(layer.prior), w(layer.latent), w(layer.projection)
    prior = np.exp(g64 @ wp + bp)
    prior /= prior.sum(-1, keepdims=True)
    total = np.zeros((5, 6))
    for k in range(3):  # p(x) = Σ_k p(z = k) p(x | z = k)
        h = np.tanh(g64 @ wl + bl).reshape(5, 3, 4)[:, k]
        logits = h @ wo + bo
        total += prior[:, k:k + 1] * np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.exp(log_p), total, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(total.sum(-1), 1.0, rtol=1e-12)


def test_mixture_breaks_the_softmax_bottleneck():
    # log p over N contexts: a single softmax gives H W^T + 1 b^T − lse 1^T, rank <= d + 2;
    # a mixture of softmaxes is not so bounded.
    d, vocab, n = 2, 12, 12
    g = tf.random.stateless_normal([n, 6], seed=[5, 6])
    ranks = {}
    for k in (1, 4):
        layer = MixtureOfSoftmaxes(vocab_size=vocab, num_softmaxes=k, latent_dim=d)
        layer.build((n, 6))
        layer.projection.kernel.assign(3.0 * layer.projection.kernel)  # away from uniform
        s = np.linalg.svd(layer(g).numpy().astype(np.float64), compute_uv=False)
        ranks[k] = int((s > 1e-4 * s[0]).sum())
    assert ranks[1] <= d + 2 < ranks[4], ranks


def test_mos_lm_likelihood_and_sampler():
    model = MoSLM(vocab_size=9, embed_dim=4, hidden_dim=5, num_softmaxes=3)
    batch = {"inputs": tf.constant([[3, 5, 6, 7]]), "targets": tf.constant([[5, 6, 7, 8]]),
             "mask": tf.constant([[1., 1., 1., 0.]])}
    objective = model.objective(batch)
    log_p = model.decoder(batch["inputs"]).numpy()  # log-probabilities, already normalised
    np.testing.assert_allclose(np.exp(log_p).sum(-1), 1.0, rtol=1e-5)
    expected = -sum(log_p[0, t, y] for t, y in enumerate([5, 6, 7]))
    np.testing.assert_allclose(objective.stats["nll"], [expected], rtol=1e-5)
    np.testing.assert_allclose(objective.loss, [expected / 3], rtol=1e-5)
    assert not any("mixture" not in w.path and "projection" in w.path
                   for w in model.trainable_weights)  # the replaced Dense holds no weights
    samples = model.decoder.sample(tf.fill([3], 3), 4, seed=tf.constant([1, 2]))
    assert samples.shape == (3, 4)
    clone = MoSLM.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
