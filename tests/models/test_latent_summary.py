"""LatentSummary: every distribution normalised over all of V^M, the ELBO against log p(x) by
enumerating every summary, the REINFORCE estimate's mean, and the semi-supervised objective."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from tflv.models.base import HParams
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
    hparams = HParams(dict(summary_length=M, embed_dim=4, hidden_dim=5, summary_samples=2))
    model = LatentSummary.from_corpus(OneBatchCorpus(), hparams)
    model.objective(BATCH)
    # targets 4, 5, 4, 3: counts c_3 = 1, c_4 = 2, c_5 = 1 of 4 tokens, add-1/2 over V = 6
    expected = np.log((np.array([0, 0, 0, 1, 2, 1]) + 0.5) / 7.0)
    for layer in (model.prior_projection, model.projection):
        np.testing.assert_allclose(layer.bias.numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="output_bias has 2 entries, expected vocab_size=6"):
        LatentSummary(V, output_bias=[0.0, 0.0])
