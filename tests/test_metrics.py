"""Metrics against hand-computed cases, brute force, scikit-learn and exact information."""
import itertools

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.metrics import v_measure_score

from tflv import metrics

tfd = tfp.distributions


def test_perplexity_and_active_units():
    np.testing.assert_allclose(metrics.perplexity(tf.constant(460.0, tf.float64), 100),
                               np.exp(4.6), rtol=1e-12)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_tokens must be > 0"):
        metrics.perplexity(1.0, 0)
    rng = np.random.RandomState(0)
    # per-dimension variances about 0, 0.002 and 0.5 around different means: one active unit
    means = np.stack([np.full(500, 3.0), 1.0 + 0.045 * rng.randn(500), 0.7 * rng.randn(500)], 1)
    assert int(metrics.active_units(means)) == 1
    assert int(metrics.active_units(means, threshold=1e-3)) == 2
    with pytest.raises(ValueError, match=r"means must be \[N, D\]"):
        metrics.active_units(np.zeros(4))


def test_mutual_information_of_a_categorical_posterior():
    """x uniform over N inputs: I(x; z) = H(mean_n q_n) − mean_n H(q_n), exactly."""
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    q = tfd.Categorical(probs=tf.constant(probs))
    entropy = lambda p: -(p * np.log(p)).sum(-1)  # noqa: E731
    exact = entropy(probs.mean(0)) - entropy(probs).mean()
    z = q.sample(20000, seed=[1, 2])  # [S, N]
    estimate = float(metrics.mutual_information(q, z))
    log_agg = np.log(probs.mean(0))[z.numpy()]
    terms = np.log(probs[np.arange(3), z.numpy()]) - log_agg  # [S, N], independent columns
    se = np.sqrt((terms.var(0, ddof=1) / len(terms)).sum()) / 3
    assert abs(estimate - exact) < 4 * se
    same = tfd.Categorical(probs=tf.constant(np.tile(probs[:1], [3, 1])))
    assert abs(float(metrics.mutual_information(same, same.sample(10, seed=[3, 4])))) < 1e-12
    with pytest.raises(ValueError, match=r"z must be \[S, N"):
        metrics.mutual_information(q, tf.zeros([5, 4], tf.int32))


def test_mutual_information_of_gaussian_posteriors_against_quadrature():
    """q(z | x = ±1) = N((±2, 0), I): I(x; z) = log 2 − E_z[H(x | z)], p(x = + | z) = σ(4 z_1)."""
    q = tfd.MultivariateNormalDiag(tf.constant([[-2.0, 0.0], [2.0, 0.0]], tf.float64),
                                   tf.ones([2, 2], tf.float64))

    def binary_entropy(z1):
        p = scipy.special.expit(4.0 * z1)
        return -scipy.special.xlogy(p, p) - scipy.special.xlogy(1 - p, 1 - p)

    exact = np.log(2.0) - scipy.integrate.quad(
        lambda z1: scipy.stats.norm(2.0, 1.0).pdf(z1) * binary_entropy(z1), -10, 14)[0]
    z = q.sample(4000, seed=[5, 6])
    terms = (q.log_prob(z) - (tf.reduce_logsumexp(q.log_prob(z[:, :, None]), -1)
                              - np.log(2.0))).numpy()  # [S, 2]
    se = np.sqrt((terms.var(0, ddof=1) / len(terms)).sum()) / 2
    assert abs(float(metrics.mutual_information(q, z)) - exact) < 4 * se


def test_tag_induction_accuracies_on_a_hand_case_and_by_brute_force():
    pred = np.array([0, 0, 1, 1, 2, 2, 2])
    gold = np.array([0, 0, 0, 0, 1, 1, 5])
    mask = np.array([1, 1, 1, 1, 1, 1, 0], bool)
    # clusters 0 and 1 both map to tag 0 many-to-one; one-to-one can use tag 0 only once
    assert metrics.many_to_one_accuracy(pred, gold, mask) == 1.0
    assert metrics.one_to_one_accuracy(pred, gold, mask) == pytest.approx(4 / 6)
    rng = np.random.RandomState(1)
    for _ in range(5):
        p, g = rng.randint(0, 4, size=30), rng.randint(0, 4, size=30)
        best = max(np.mean(np.array(perm)[p] == g) for perm in itertools.permutations(range(4)))
        assert metrics.one_to_one_accuracy(p, g) == pytest.approx(best)
        m2o = np.mean([np.bincount(g[p == c]).argmax() == t for c, t in zip(p, g)])
        assert metrics.many_to_one_accuracy(p, g) == pytest.approx(m2o)
    with pytest.raises(ValueError, match="same shape"):
        metrics.many_to_one_accuracy(pred, gold[:3])


def test_v_measure_matches_sklearn():
    rng = np.random.RandomState(2)
    for _ in range(5):
        p, g = rng.randint(0, 5, size=(4, 10)), rng.randint(0, 3, size=(4, 10))
        mask = rng.rand(4, 10) < 0.8
        assert metrics.v_measure(p, g, mask) == pytest.approx(v_measure_score(g[mask], p[mask]),
                                                              abs=1e-12)
    assert metrics.v_measure([0, 0, 1], [1, 1, 2]) == pytest.approx(1.0)


def test_npmi_against_the_definition():
    counts = np.array([[2, 1, 0, 0, 3], [1, 0, 0, 1, 1], [0, 4, 1, 0, 1], [1, 1, 0, 0, 1]])
    topics = np.array([[0, 1, 4], [2, 3, 4]])
    present = counts > 0
    expected = []
    for words in topics:
        values = []
        for a, b in itertools.combinations(words, 2):
            p_a, p_b = present[:, a].mean(), present[:, b].mean()
            p_ab = (present[:, a] & present[:, b]).mean()
            if p_ab == 0:
                values.append(-1.0)
            elif p_ab == 1:
                values.append(1.0)
            else:
                values.append(np.log(p_ab / (p_a * p_b)) / -np.log(p_ab))
        expected.append(np.mean(values))
    np.testing.assert_allclose(metrics.npmi(topics, counts), expected, rtol=1e-12)
    # topic 1 holds the never-co-occurring pair (2, 3): −1 counted in its mean
    assert (present[:, 2] & present[:, 3]).sum() == 0
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.npmi(np.array([[0], [1]]), counts)
    with pytest.raises(ValueError, match="V > every topic word id"):
        metrics.npmi(np.array([[0, 9]]), counts)


def test_npmi_and_topic_diversity_on_a_hand_computed_corpus():
    # documents 0..3; word 0 occurs in {0, 1, 3}, word 1 in {0, 2, 3}, word 2 in {2}, word 3 nowhere
    counts = np.array([[1, 2, 0, 0], [3, 0, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0]])
    # p(0) = p(1) = 3/4, p(0, 1) = 1/2: NPMI = log((1/2) / (9/16)) / −log(1/2) = 3 − 2 log2 3
    # p(1, 2) = p(2) = 1/4, p(1) = 3/4: NPMI = log((1/4) / (3/16)) / −log(1/4) = log2(4/3) / 2
    # (0, 2) never co-occur: −1
    npmi = metrics.npmi(np.array([[0, 1], [1, 2], [0, 2]]), counts)
    np.testing.assert_allclose(npmi, [3 - 2 * np.log2(3), np.log2(4 / 3) / 2, -1.0], rtol=1e-12)
    # a three-word topic: the mean of its three pairs
    np.testing.assert_allclose(metrics.npmi(np.array([[0, 1, 2]]), counts),
                               [(3 - 2 * np.log2(3) + np.log2(4 / 3) / 2 - 1) / 3], rtol=1e-12)
    # diversity: words {0, 1, 2, 5} among 2 × 3 top words = 4/6; identical topics: 1/K
    assert metrics.topic_diversity([[0, 1, 2], [1, 2, 5]]) == pytest.approx(4 / 6)
    assert metrics.topic_diversity([[3, 4, 5]] * 5) == pytest.approx(1 / 5)
    assert metrics.topic_diversity(np.arange(12).reshape(3, 4)) == 1.0
    with pytest.raises(ValueError, match=r"\[K, N\]"):
        metrics.topic_diversity([1, 2, 3])


def test_perplexities_beyond_float64_are_inf_not_a_clamped_number():
    from tflv.models.rnnlm import lm_metrics
    from tflv.models.topic_models import document_metrics
    assert lm_metrics({"nll": 2.0 * 3, "tokens": 3.0})["ppl"] == pytest.approx(np.exp(2.0))
    assert lm_metrics({"nll": 800.0, "tokens": 1.0})["ppl"] == np.inf  # exp(800) overflows
    sums = {"elbo_per_token": -900.0, "elbo": -1800.0, "tokens": 2.0, "kl": 1.0, "documents": 1.0}
    metrics = document_metrics(sums)
    assert metrics["ppl"] == np.inf and metrics["ppl_corpus"] == np.inf


def test_write_metrics_draws_values_beyond_float32_as_inf(tmp_path):
    """A 2-step ProdLDA run's corpus perplexity (~1e304) made tf.summary.scalar raise."""
    from tensorboard.backend.event_processing import event_accumulator
    from trainers.loop import write_metrics
    writer = tf.summary.create_file_writer(str(tmp_path))
    write_metrics(writer, 3, {"ppl": 1e304, "neg": -1e39, "kl": 2.5}, "test")
    writer.flush()
    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    value = lambda tag: float(tf.make_ndarray(events.Tensors(tag)[0].tensor_proto))
    assert value("test/ppl") == np.inf and value("test/neg") == -np.inf
    assert value("test/kl") == 2.5
