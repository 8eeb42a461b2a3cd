"""Conjugacy: the Dirichlet–multinomial posterior by Bayes' rule, and LDA's mean-field VI against
a brute-force ELBO, its closed-form special cases, and scikit-learn on a 20news slice."""
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.decomposition import LatentDirichletAllocation

import data
from tflv.vi.conjugate import LDA, dirichlet_multinomial_posterior

tfd = tfp.distributions


def test_dirichlet_multinomial_posterior_is_bayes_rule():
    """log Dir(θ | α) + log Mult(n | θ) − log DirMult(n | α) = log Dir(θ | α + n) for every θ."""
    rng = np.random.RandomState(0)
    alpha = tf.constant(rng.uniform(0.3, 2.0, size=(2, 4)))
    counts = tf.constant(rng.poisson(3.0, size=(2, 4)).astype(np.float64))
    theta = tf.constant(rng.dirichlet(np.ones(4), size=(5, 2)))  # [5, 2, 4]
    total = tf.reduce_sum(counts, -1)
    bayes = (tfd.Dirichlet(alpha).log_prob(theta)
             + tfd.Multinomial(total, probs=theta).log_prob(counts)
             - tfd.DirichletMultinomial(total, alpha).log_prob(counts))
    np.testing.assert_allclose(dirichlet_multinomial_posterior(alpha, counts).log_prob(theta),
                               bayes, rtol=1e-10)


def test_dirichlet_multinomial_posterior_rejects_bad_input():
    with pytest.raises(ValueError, match="same number of categories"):
        dirichlet_multinomial_posterior(tf.ones([3]), tf.ones([4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="counts must be >= 0"):
        dirichlet_multinomial_posterior(tf.ones([3]), tf.constant([1.0, -1.0, 0.0]))


def _tiny_counts():
    return np.random.RandomState(1).poisson(2.0, size=(4, 6)).astype(np.float64)  # [D, V]


def test_one_topic_lda_is_the_dirichlet_multinomial_posterior():
    counts = _tiny_counts()
    lda = LDA(num_topics=1, vocab_size=6, topic_word_prior=0.3)
    lda.cavi(counts, num_iterations=1)
    expected = dirichlet_multinomial_posterior(tf.fill([6], tf.constant(0.3, tf.float64)),
                                               counts.sum(0)).concentration
    np.testing.assert_allclose(lda.topic_word[0], expected, rtol=1e-12)


def _elbo_brute_force(counts, gamma, lam, alpha, eta):
    """E_q[log p(w, z, θ, β)] − E_q[log q] with explicit φ = optimum given (γ, λ); per document
    brackets [D] and the topic term, from scipy's Dirichlet entropies."""
    def e_log(x):  # E[log x] under Dir(x) rows
        return scipy.special.digamma(x) - scipy.special.digamma(x.sum(-1, keepdims=True))

    def e_log_dirichlet_prior(prior, posterior):  # E_{Dir(posterior)}[log Dir(x; prior)]
        size = posterior.shape[-1]
        return (scipy.special.gammaln(prior * size) - size * scipy.special.gammaln(prior)
                + ((prior - 1) * e_log(posterior)).sum(-1))

    elog_theta, elog_beta = e_log(gamma), e_log(lam)  # [D, K], [K, V]
    docs = []
    for d in range(len(counts)):
        logits = elog_theta[d][:, None] + elog_beta  # [K, V]
        phi = np.exp(logits - scipy.special.logsumexp(logits, axis=0))  # [K, V]
        words = (counts[d] * (phi * (logits - np.log(phi))).sum(0)).sum()
        docs.append(words + e_log_dirichlet_prior(alpha, gamma[d])
                    + scipy.stats.dirichlet(gamma[d]).entropy())
    topics = sum(e_log_dirichlet_prior(eta, lam[k]) + scipy.stats.dirichlet(lam[k]).entropy()
                 for k in range(len(lam)))
    return np.array(docs), topics


def test_elbo_matches_the_brute_force_mean_field_elbo():
    counts = _tiny_counts()
    lda = LDA(num_topics=3, vocab_size=6, doc_topic_prior=0.4, topic_word_prior=0.2, seed=3)
    lda.cavi(counts, num_iterations=2)
    gamma = lda.document_topics(counts).numpy()
    docs, topics = _elbo_brute_force(counts, gamma, lda.topic_word.numpy(), 0.4, 0.2)
    np.testing.assert_allclose(lda.elbo(counts, per_document=True), docs, rtol=1e-10)
    np.testing.assert_allclose(lda.elbo(counts), docs.sum() + topics, rtol=1e-10)
    np.testing.assert_allclose(lda.perplexity(counts), np.exp(-(docs.sum() + topics)
                                                             / counts.sum()), rtol=1e-10)
    np.testing.assert_allclose(lda.perplexity(counts, per_document=True),
                               np.exp(np.mean(-docs / counts.sum(1))), rtol=1e-10)


def test_cavi_elbo_never_decreases_and_online_vb_with_unit_step_is_cavi():
    counts = _tiny_counts()
    exact = dict(num_topics=3, vocab_size=6, doc_topic_prior=0.4, topic_word_prior=0.2, seed=5,
                 doc_tolerance=1e-12, max_doc_iterations=2000)
    lda = LDA(**exact)
    trace = lda.cavi(counts, num_iterations=8).numpy()
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[1:])), trace
    assert trace[-1] > trace[0]
    batch, online = LDA(**exact), LDA(**exact)
    batch.cavi(counts, num_iterations=1)
    rho = online.online_vb(counts, total_documents=len(counts), offset=1.0, decay=0.7)
    assert float(rho) == 1.0  # ρ_0 = (τ0 + 0)^−κ with τ0 = 1
    np.testing.assert_allclose(online.topic_word, batch.topic_word, rtol=1e-12)
    rho = online.online_vb(counts, total_documents=len(counts), offset=1.0, decay=0.7)
    np.testing.assert_allclose(float(rho), 2.0 ** -0.7, rtol=1e-12)


@pytest.fixture(scope="module")
def news20_slice(data_dir):
    """The first 200 training documents of 20news (NVDM vocabulary): float64 [200, 2000]."""
    batch = next(iter(data.load("news20", data_dir).dataset("train", "bow", 200)))
    return batch["counts"].numpy().astype(np.float64)


K, ALPHA, ETA = 8, 0.1, 0.01


def _sklearn(method, **kwargs):
    return LatentDirichletAllocation(n_components=K, doc_topic_prior=ALPHA, topic_word_prior=ETA,
                                     learning_method=method, random_state=0, **kwargs)


def _same_start(counts):
    """An LDA whose λ is scikit-learn's initialization for random_state=0."""
    lda = LDA(K, counts.shape[1], doc_topic_prior=ALPHA, topic_word_prior=ETA)
    lda.topic_word.assign(np.random.RandomState(0).gamma(100.0, 0.01, (K, counts.shape[1])))
    return lda


def test_perplexity_equals_sklearn_at_the_same_topics(news20_slice):
    reference = _sklearn("batch", max_iter=3).fit(news20_slice)
    lda = LDA(K, news20_slice.shape[1], doc_topic_prior=ALPHA, topic_word_prior=ETA)
    lda.topic_word.assign(reference.components_)
    # same local iterations from γ = 1, same stopping rule, same bound: equal up to round-off
    np.testing.assert_allclose(lda.perplexity(news20_slice), reference.perplexity(news20_slice),
                               rtol=1e-6)


def test_cavi_and_online_vb_agree_with_sklearn(news20_slice):
    """Same priors, same initial λ; scikit-learn restarts each E-step from random γ where we start
    from γ = 1, so the fits differ slightly: tolerance 3% of the perplexity."""
    lda = _same_start(news20_slice)
    lda.cavi(news20_slice, num_iterations=10)
    batch = _sklearn("batch", max_iter=10).fit(news20_slice)
    np.testing.assert_allclose(lda.perplexity(news20_slice), batch.perplexity(news20_slice),
                               rtol=0.03)

    lda = _same_start(news20_slice)
    for start in range(0, len(news20_slice), 50):  # one pass, minibatches of 50, in order
        lda.online_vb(news20_slice[start:start + 50], total_documents=len(news20_slice),
                      offset=11.0, decay=0.7)
    # scikit-learn counts updates from 1: its learning_offset is our τ0 − 1
    online = _sklearn("online", max_iter=1, batch_size=50, learning_offset=10.0,
                      learning_decay=0.7).fit(news20_slice)
    np.testing.assert_allclose(lda.perplexity(news20_slice), online.perplexity(news20_slice),
                               rtol=0.03)


def test_lda_rejects_bad_input():
    lda = LDA(2, 6)
    with pytest.raises(ValueError, match=r"counts must be \[D, 6\]"):
        lda.perplexity(np.ones((3, 5)))
    with pytest.raises(ValueError, match="decay in"):
        lda.online_vb(np.ones((3, 6)), total_documents=3, decay=0.4)
    with pytest.raises(ValueError, match="num_topics"):
        LDA(0, 6)
