"""LatentSummary: every distribution normalised over all of V^M, the ELBO against log p(x) by
enumerating every summary, the REINFORCE estimate's mean, the semi-supervised objective, and
semi-supervised training on synthetic documents whose true compression and entropy are known."""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training import adam_step
from tflv.models.latent_summary import LatentSummary

V, M = 6, 2
BATCH = {"inputs": tf.constant([[2, 4, 5, 4]]), "targets": tf.constant([[4, 5, 4, 3]]),
         "mask": tf.constant([[1., 1., 1., 1.]])}
ALL_Z = tf.constant(list(itertools.product(range(V), repeat=M)), tf.int32)  # [V^M, M]


@pytest.fixture(scope="module")
def scored():
    tf.keras.utils.set_random_seed(3)
    model = LatentSummary(V, summary_length=M, embed_dim=4, hidden_dim=5, num_samples=3)
    n = ALL_Z.shape[0]
    rows = {k: tf.repeat(v, n, axis=0) for k, v in BATCH.items()}
    log_q = model.log_posterior(rows, ALL_Z).numpy().astype(np.float64)
    log_prior = model.log_prior(ALL_Z).numpy().astype(np.float64)
    log_lik = model.log_likelihood(rows, ALL_Z).numpy().astype(np.float64)
    return model, log_q, log_prior, log_lik


def test_prior_and_posterior_are_distributions_over_every_summary(scored):
    _, log_q, log_prior, _ = scored
    np.testing.assert_allclose(np.exp(log_prior).sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.exp(log_q).sum(), 1.0, rtol=1e-5)
    # the pointer only copies document words {3, 4, 5}
    copyable = np.isin(ALL_Z.numpy(), [3, 4, 5]).all(axis=1)
    assert np.all(np.exp(log_q[~copyable]) < 1e-30)


def test_elbo_is_below_the_enumerated_marginal_and_the_estimate_is_unbiased(scored):
    model, log_q, log_prior, log_lik = scored
    log_joint = log_prior + log_lik
    log_marginal = np.log(np.exp(log_joint).sum())  # log p(x) = log Σ_z p(z) p(x | z)
    q = np.exp(log_q)
    support = q > 1e-30
    exact_elbo = (q[support] * (log_joint[support] - log_q[support])).sum()
    assert exact_elbo <= log_marginal + 1e-6
    # the gap is KL(q ‖ p(z | x)) >= 0, by enumeration too
    log_post = log_joint - log_marginal
    kl = (q[support] * (log_q[support] - log_post[support])).sum()
    np.testing.assert_allclose(log_marginal - exact_elbo, kl, rtol=1e-4, atol=1e-6)
    draws = np.array([float(model.elbo(BATCH)[1][0]) for _ in range(30)])  # 3 samples each
    stderr = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - exact_elbo) < 5 * stderr + 1e-4, (draws.mean(), exact_elbo)


def test_semi_supervised_rows_use_the_given_summary(scored):
    model = scored[0]
    z = tf.constant([[5, 4]])
    batch = {**BATCH, "summary": z, "has_summary": tf.constant([1.0])}
    expected = (model.log_likelihood(BATCH, z) + model.log_prior(z)
                + model.log_posterior(BATCH, z)).numpy()
    loss = model.objective(batch, training=True).loss.numpy()
    np.testing.assert_allclose(loss, -expected / 4, rtol=1e-5)


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="num_samples"):
        LatentSummary(V, num_samples=1)


class OneBatchCorpus:
    """The corpus interface `from_corpus` reads: `info` and `dataset` (here always BATCH)."""
    info = {"vocab_size": V}

    def dataset(self, split, form, batch_size, **options):
        return [BATCH]


def test_both_word_projections_start_at_the_log_unigram_frequencies():
    model = LatentSummary.from_corpus(OneBatchCorpus(), summary_length=M, embed_dim=4,
                                      hidden_dim=5, summary_samples=2)
    model.objective(BATCH)
    # targets 4, 5, 4, 3: counts c_3 = 1, c_4 = 2, c_5 = 1 of 4 tokens, add-1/2 over V = 6
    expected = np.log((np.array([0, 0, 0, 1, 2, 1]) + 0.5) / 7.0)
    for layer in (model.prior_projection, model.projection):
        np.testing.assert_allclose(layer.bias.numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="output_bias has 2 entries, expected vocab_size=6"):
        LatentSummary(V, output_bias=[0.0, 0.0])


CONTENT, FILLER = range(4, 8), range(8, 10)  # C = 4 content words, R = 2 filler words


def spelled_out_summaries(rng, n, m):
    """Documents c_1 r_1 ... c_m r_m: a summary z* = c_1..c_m, uniform over the content words,
    each word followed by a filler r_i uniform over the filler words. z* is the true compression
    (the document determines it, and it determines the document up to the fillers), so
    −log p(x) = m log(C R) exactly for every document."""
    z = rng.choice(CONTENT, size=(n, m))
    x = np.stack([z, rng.choice(FILLER, size=(n, m))], axis=2).reshape(n, 2 * m)
    batch = {"inputs": tf.constant(np.concatenate([np.full((n, 1), 2), x], axis=1)),
             "targets": tf.constant(np.concatenate([x, np.full((n, 1), 3)], axis=1)),
             "mask": tf.ones([n, 2 * m + 1])}
    return batch, z


@pytest.mark.slow
def test_semi_supervised_training_recovers_the_true_compression_and_entropy():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    m = 2
    train, z_train = spelled_out_summaries(rng, 1024, m)
    # half the training documents come with their summary, half are trained by the ELBO
    train.update(summary=tf.constant(z_train, tf.int32),
                 has_summary=tf.constant(np.arange(1024) % 2, tf.float32))
    test, z_test = spelled_out_summaries(rng, 500, m)
    entropy = m * np.log(len(CONTENT) * len(FILLER))  # −log p(x) of every document
    model = LatentSummary(10, summary_length=m, embed_dim=16, hidden_dim=32, num_samples=2)
    step = adam_step(model, 0.01)

    recovered = lambda: (model.sample_summary(test, greedy=True).numpy() == z_test).all(axis=1)
    assert recovered().mean() < 0.5  # untrained
    for _ in range(80):
        step(train)
    # the inference network finds z* in unlabelled documents it never saw
    assert recovered().mean() > 0.98
    # the bound reaches the true entropy; it cannot go below it (a cross-entropy) beyond noise.
    # Seeds 0-1: 0.04 nats above. Without the summary's encoder the decoder cannot tell the
    # order of z (attention over a set) and stays ~0.7 nats above.
    nll = model.objective(test).stats["nll"].numpy()  # [500], −ELBO per document
    stderr = nll.std() / np.sqrt(len(nll))
    assert entropy - 4 * stderr < nll.mean() < entropy + 0.15, (nll.mean(), entropy)
