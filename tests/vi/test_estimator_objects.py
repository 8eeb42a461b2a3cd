"""The estimator objects of `tflv.vi.estimators` (what a model that chooses among estimators is
given) against the functions they apply, and the name registry a config uses."""
import numpy as np
import pytest
import tensorflow as tf

from tflv.models import MixtureLM
from tflv.vi import estimators

LOGITS = tf.constant([[0.3, -1.0, 2.0], [1.0, 0.0, -0.5]])  # [B=2, K=3]
VALUES = tf.constant([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]])  # f(k) per row [B, K]


def signal(z):
    """f(z) = Σ_k z_k f_k of the row: one-hot or relaxed codes [S, B, K] -> [S, B]."""
    return tf.reduce_sum(z * VALUES[tf.newaxis], axis=-1)


def test_enumeration_is_the_exact_expectation_in_value_and_gradient():
    with tf.GradientTape() as tape:
        tape.watch(LOGITS)
        got = estimators.Enumeration().surrogate(LOGITS, signal)
    q = tf.nn.softmax(LOGITS).numpy().astype(np.float64)
    expected = (q * VALUES.numpy()).sum(-1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    # d/dlogits Σ q f = q (f − Σ q f)
    np.testing.assert_allclose(tape.gradient(got, LOGITS).numpy(),
                               q * (VALUES.numpy() - expected[:, None]), rtol=1e-5, atol=1e-7)


def test_sampling_objects_apply_their_functions_with_the_same_seed():
    seed = tf.constant([3, 4])
    score = estimators.ScoreFunction(num_samples=4, baseline="leave_one_out")
    z = estimators.tfd.Categorical(logits=LOGITS).sample(4, seed=seed)
    f = signal(tf.one_hot(z, 3))
    expected = estimators.score_function(estimators.tfd.Categorical(logits=LOGITS).log_prob(z), f,
                                         estimators.leave_one_out_baseline(f))
    np.testing.assert_allclose(score.surrogate(LOGITS, signal, seed).numpy(), expected.numpy())
    gumbel = estimators.GumbelSoftmax(num_samples=3, temperature=0.5, straight_through=True)
    np.testing.assert_allclose(
        gumbel.surrogate(LOGITS, signal, seed).numpy(),
        estimators.gumbel_softmax(LOGITS, signal, 0.5, 3, seed, straight_through=True).numpy())


def test_names_map_to_objects_and_bad_options_are_refused():
    assert estimators.from_name("exact", num_samples=3) == estimators.Enumeration()
    assert estimators.from_name("score_function", num_samples=2, baseline="learned",
                                temperature=0.1) == estimators.ScoreFunction(2, "learned")
    assert not estimators.Enumeration().sampled and estimators.GumbelSoftmax().sampled
    with pytest.raises(ValueError, match="estimator must be one of exact, score_function"):
        estimators.from_name("reinforce")
    with pytest.raises(ValueError, match="leave_one_out' needs num_samples >= 2"):
        estimators.ScoreFunction(1, "leave_one_out")
    with pytest.raises(ValueError, match="temperature > 0"):
        estimators.GumbelSoftmax(temperature=0.0)


def test_mixture_lm_takes_an_estimator_object_or_its_name_alike():
    by_object = MixtureLM(vocab_size=6, embed_dim=4, hidden_dim=4, code_dim=3,
                          estimator=estimators.GumbelSoftmax(2, 0.5))
    by_name = MixtureLM(vocab_size=6, embed_dim=4, hidden_dim=4, code_dim=3,
                        estimator="gumbel_softmax", num_samples=2, temperature=0.5)
    assert by_object.estimator == by_name.estimator == estimators.GumbelSoftmax(2, 0.5)
    assert by_object.config == by_name.config  # serialised alike (by name and options)
    assert MixtureLM.from_corpus(
        type("Sizes", (), {"info": {"vocab_size": 6}})(), estimator="score_function",
        latent_samples=2, baseline="leave_one_out", embed_dim=4,
        hidden_dim=4).estimator == estimators.ScoreFunction(2, "leave_one_out")
