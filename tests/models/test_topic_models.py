"""NVDM, GSM and ProdLDA: the ELBO against a float64 reference, the Laplace prior against the
Hessian of the Dirichlet in the softmax basis, the reported perplexity conventions; all four topic
models (LDA too) learning from documents of a known LDA (perplexity toward the true model's,
topics recovered by the mixture models GSM and LDA); the trainer end to end on 20news."""
import json
import math
import os
import subprocess
import sys
import types
import warnings

import keras
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

from layer_test_case import run_layer_test
from tests.training import adam_step
from tflv import summaries
from tflv.models import MODELS
from tflv.models.lda import LatentDirichletAllocation, sample_documents
from tflv.layers.topics import TopicDecoder
from tflv.models.topic_models import (GSM, NVDM, NeuralTopicModel, ProdLDA, collapse_warning,
                                      document_metrics, document_stats, laplace_dirichlet_prior)
from tflv.vi import importance_sampled_log_marginal

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = {"nvdm": NVDM, "gsm": GSM, "prodlda": ProdLDA}


# Variants by name: GSM with factored topic logits (embed_dim 4), GSM as a document model (the
# log-linear decoder, factored), ProdLDA with the mixture decoder (NVLDA) and ProdLDA trained as
# NVDM (recipe "nvdm": no batch norm, no dropout; tflv's ProdLDA before issue 19).
VARIANTS = {"gsm_factored": ("gsm", 4, None, None),
            "gsm_log_linear": ("gsm", 4, "log_linear", None),
            "nvlda": ("prodlda", None, "mixture", "nvdm"),
            "prodlda_nvdm": ("prodlda", None, None, "nvdm")}
MIXTURES = ("gsm", "gsm_factored", "nvlda")  # the names whose p(w | θ) is a mixture of topics


def make_model(name, vocab_size=12, num_topics=3, hidden=(8,)):
    """`name`: a topic model or one of `VARIANTS`."""
    name, embed_dim, decoder, recipe = VARIANTS.get(name, (name, None, None, None))
    return CLASSES[name](vocab_size=vocab_size, topic_model=name, num_topics=num_topics,
                         hidden_units=hidden, embed_dim=embed_dim, topic_decoder=decoder,
                         recipe=recipe)


def test_registered_under_their_names():
    for name, cls in CLASSES.items():
        assert MODELS[name] is cls and cls.default_topic_model == name


def test_laplace_prior_is_the_mode_and_hessian_pseudo_inverse_of_the_dirichlet():
    # In the softmax basis, log Dir(softmax(z)) + log|det ∂θ/∂z| = Σ_k α_k log softmax(z)_k + c.
    alpha = np.array([0.3, 1.0, 2.5, 0.7, 4.0])
    prior = laplace_dirichlet_prior(tf.constant(alpha))
    loc, var = prior.mean().numpy(), prior.variance().numpy()
    z = tf.Variable(loc)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            log_density = tf.reduce_sum(alpha * tf.nn.log_softmax(z))
        grad = inner.gradient(log_density, z)
    hessian = outer.jacobian(grad, z).numpy()
    np.testing.assert_allclose(grad.numpy(), 0.0, atol=1e-12)  # a stationary point: the mode
    np.testing.assert_allclose(loc.sum(), 0.0, atol=1e-12)  # on the Σ z = 0 section
    np.testing.assert_allclose(var, np.diag(np.linalg.pinv(-hessian)), rtol=1e-9)
    # Srivastava & Sutton's α = 1: μ = 0, σ² = 1 − 1/K.
    unit = laplace_dirichlet_prior(tf.ones([50], tf.float64))
    np.testing.assert_allclose(unit.variance().numpy(), 1.0 - 1.0 / 50, rtol=1e-12)
    with pytest.raises(ValueError, match="K >= 2"):
        laplace_dirichlet_prior(tf.ones([1]))


def reference_log_word_probs(model, z, mixture):
    """log p(w | θ(z)) in float64 numpy from the model's weights, by the mixture or the log-linear
    decoder. z: [S, B, K] → [S, B, V]."""
    topic_word = model.decoder.topic_logits().numpy().astype(np.float64)
    if model.topic_model == "gsm":
        kernel, bias = (w.numpy().astype(np.float64) for w in model.theta_projection.weights)
        z = z @ kernel + bias
    theta = z if model.topic_model == "nvdm" else scipy.special.softmax(z, axis=-1)
    if mixture:
        return np.log(theta @ scipy.special.softmax(topic_word, axis=-1))
    if model.decoder.batch_norm:  # evaluation mode: BN's running moments and learned shift
        norm = model.decoder.logit_norm
        mean, var, shift = (w.numpy().astype(np.float64) for w in
                            (norm.moving_mean, norm.moving_variance, norm.beta))
        return scipy.special.log_softmax((theta @ topic_word - mean) / np.sqrt(var + norm.epsilon)
                                         + shift, axis=-1)
    return scipy.special.log_softmax(theta @ topic_word + model.decoder.bias.numpy(), axis=-1)


def gaussian_kl(mu, sigma, prior_mu, prior_sigma):
    """KL(N(μ, σ²) || N(m, s²)) summed over the last axis."""
    return np.sum(np.log(prior_sigma / sigma) + (sigma ** 2 + (mu - prior_mu) ** 2)
                  / (2 * prior_sigma ** 2) - 0.5, axis=-1)


@pytest.mark.parametrize("name", ["nvdm", "gsm", "gsm_factored", "gsm_log_linear", "prodlda",
                                  "nvlda", "prodlda_nvdm"])
def test_elbo_is_reconstruction_minus_closed_form_kl_in_float64(name):
    model = make_model(name)
    rng = np.random.default_rng(1)
    counts = rng.poisson(2.0, size=(4, 12)).astype(np.float32)
    noise = rng.standard_normal((3, 4, 3)).astype(np.float32)  # [S, B, K]
    if model.topic_model == "prodlda":  # Srivastava & Sutton eq. 3 with α = 1, K = 3
        prior_mu, prior_sigma = np.zeros(3), np.full(3, np.sqrt(1 / 3 + 3 / 9))
    else:
        prior_mu, prior_sigma = np.zeros(3), np.ones(3)
    encoder_q = model.posterior(tf.constant(counts))
    # The encoder's q (elbo_terms), and any other q, e.g. one refined per document (elbo_under).
    other_q = tfp.distributions.MultivariateNormalDiag(encoder_q.loc + 0.5, encoder_q.stddev() * 2.0)
    for terms, q in [(model.elbo_terms(tf.constant(counts), tf.constant(noise)), encoder_q),
                     (model.elbo_under(other_q, tf.constant(counts), tf.constant(noise)),
                      other_q)]:
        mu, sigma = (t.numpy().astype(np.float64) for t in (q.loc, q.stddev()))
        log_word = reference_log_word_probs(model, mu + sigma * noise, name in MIXTURES)
        reconstruction = np.mean(np.sum(counts * log_word, -1), axis=0)
        kl = gaussian_kl(mu, sigma, prior_mu, prior_sigma)
        np.testing.assert_allclose(terms.reconstruction.numpy(), reconstruction, rtol=1e-5)
        np.testing.assert_allclose(terms.kl.numpy(), kl, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(terms.elbo.numpy(), reconstruction - kl, rtol=1e-5)


@pytest.mark.parametrize("name", ["nvdm", "gsm", "prodlda"])
def test_document_topics_and_word_distributions(name):
    model = make_model(name)
    z = tf.random.stateless_normal([6, 3], seed=[1, 2]) * 3.0
    theta = model.document_topics(z).numpy()
    if name == "nvdm":
        np.testing.assert_array_equal(theta, z.numpy())
    else:  # GSM and ProdLDA: θ on the simplex
        assert np.all(theta > 0)
        np.testing.assert_allclose(theta.sum(-1), 1.0, rtol=1e-6)
    word_probs = np.exp(model.decoder(model.document_topics(z)).numpy())
    np.testing.assert_allclose(word_probs.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("mixture,embed_dim", [(False, None), (False, 2), (True, None), (True, 2)])
def test_topic_decoder_layer(mixture, embed_dim):
    theta = tf.nn.softmax(tf.random.stateless_normal([4, 3], seed=[3, 4]))
    out = run_layer_test(TopicDecoder, {"vocab_size": 7, "mixture": mixture,
                                        "embed_dim": embed_dim}, theta,
                         expected_output_shape=(4, 7))
    np.testing.assert_allclose(tf.reduce_logsumexp(out, -1).numpy(), 0.0, atol=1e-5)


@pytest.mark.parametrize("mixture", [True, False])
def test_factored_topic_logits_are_topic_times_word_embeddings(mixture):
    decoder = TopicDecoder(7, mixture=mixture, embed_dim=2)
    theta = tf.nn.softmax(tf.random.stateless_normal([4, 3], seed=[5, 6]))
    out = decoder(theta).numpy().astype(np.float64)
    t, v = decoder.topic_embedding.numpy(), decoder.word_embedding.numpy()
    assert t.shape == (3, 2) and v.shape == (2, 7)
    logits = t.astype(np.float64) @ v  # [K, V], rank 2
    if mixture:
        expected = np.log(theta.numpy() @ scipy.special.softmax(logits, axis=-1))
    else:
        expected = scipy.special.log_softmax(theta.numpy() @ logits + decoder.bias.numpy(), -1)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="embed_dim must be >= 1"):
        TopicDecoder(7, embed_dim=0)


def test_model_config_round_trip_and_bad_input():
    model = make_model("gsm_factored")
    clone = GSM.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert model.get_config()["topic_decoder"] == "mixture"  # GSM's own
    # The config reaches the decoder (what --topic_decoder=log_linear builds).
    read = set()
    document_model = GSM.from_corpus(types.SimpleNamespace(info={"vocab_size": 12}), GSM.Config(
        num_topics=3, hidden_dim=8, num_layers=1, embed_dim=4, topic_decoder="log_linear"),
        read=read)
    assert document_model.get_config()["topic_decoder"] == "log_linear"
    assert not document_model.decoder.mixture and "topic_decoder" in read
    with pytest.raises(ValueError, match="unknown topic_model"):
        NeuralTopicModel(vocab_size=5, topic_model="lsa")
    with pytest.raises(ValueError, match="unknown topic_decoder"):
        NeuralTopicModel(vocab_size=5, topic_model="gsm", topic_decoder="product")
    with pytest.raises(ValueError, match="needs θ on the simplex"):
        NeuralTopicModel(vocab_size=5, topic_model="nvdm", topic_decoder="mixture")
    with pytest.raises(ValueError, match=r"counts.*\[B, 12\]"):
        model.objective({"counts": tf.zeros([2, 11])})


def test_perplexity_conventions_from_summed_stats():
    elbo, kl, lengths = tf.constant([-10.0, -40.0]), tf.constant([1.0, 3.0]), tf.constant([5.0,
                                                                                        10.0])
    sums = {k: float(tf.reduce_sum(v)) for k, v in document_stats(elbo, kl, lengths).items()}
    metrics = document_metrics(sums)
    np.testing.assert_allclose(metrics["ppl"], math.exp((10 / 5 + 40 / 10) / 2), rtol=1e-6)
    np.testing.assert_allclose(metrics["ppl_corpus"], math.exp(50 / 15), rtol=1e-6)
    np.testing.assert_allclose(metrics["kl"], 2.0, rtol=1e-6)


# Documents from a known LDA: K = 3 topics, each concentrated on its own 8 of V = 24 words.
K, V, ALPHA, LENGTH = 3, 24, 0.3, 60


def true_topics():
    topics = np.full((K, V), 0.1 / (V - 8))
    for k in range(K):
        topics[k, 8 * k:8 * (k + 1)] = 0.9 / 8
    return topics


def true_perplexity(counts, topics, num_samples=2000):
    """exp(mean_d −log p(n_d) / N_d) under the true LDA, log p(n_d) sampling θ from the prior."""
    counts, topics = tf.constant(counts, tf.float64), tf.constant(topics)
    prior = tfp.distributions.Dirichlet(tf.fill([counts.shape[0], K],
                                                tf.constant(ALPHA, tf.float64)))
    log_joint = lambda theta: prior.log_prob(theta) + tf.reduce_sum(
        counts * tf.math.log(tf.einsum("sdk,kv->sdv", theta, topics)), axis=-1)  # [S, D]
    log_marginal = importance_sampled_log_marginal(log_joint, prior, num_samples, seed=[5, 0])
    return math.exp(tf.reduce_mean(-log_marginal / tf.reduce_sum(counts, -1)))


def train(model, counts, steps, batch_size=100, learning_rate=0.01):
    """Adam on the mean loss, or the model's own `apply_update` (as `trainers.loop` does)."""
    data = tf.data.Dataset.from_tensor_slices(counts.astype(np.float32)).shuffle(
        len(counts), seed=0).repeat().batch(batch_size)
    step = (tf.function(lambda batch: model.apply_update(batch).loss)
            if hasattr(model, "apply_update") else adam_step(model, learning_rate))
    for batch in data.take(steps):
        step({"counts": batch})


def evaluate_ppl(model, counts):
    stats = model.objective({"counts": tf.constant(counts, tf.float32)}).stats
    return document_metrics({k: float(tf.reduce_sum(v)) for k, v in stats.items()})["ppl"]


@pytest.fixture(scope="module")
def lda_documents():
    topics = true_topics()
    train_counts = sample_documents(topics, ALPHA, 800, LENGTH, seed=0)
    test_counts = sample_documents(topics, ALPHA, 300, LENGTH, seed=1)
    return topics, train_counts, test_counts, true_perplexity(test_counts, topics)


@pytest.mark.parametrize("name", ["nvdm", "gsm", "gsm_factored", "gsm_log_linear", "prodlda",
                                  "nvlda", "lda"])
def test_perplexity_falls_toward_the_true_models(name, lda_documents):
    topics, train_counts, test_counts, true_ppl = lda_documents
    keras.utils.set_random_seed(0)
    model = (LatentDirichletAllocation(V, K, num_documents=len(train_counts), doc_topic_prior=ALPHA)
             if name == "lda" else make_model(name, vocab_size=V, num_topics=K, hidden=(32,)))
    before = evaluate_ppl(model, test_counts)
    train(model, train_counts, steps=400)
    after = evaluate_ppl(model, test_counts)
    # The bound cannot beat the generating model (up to sampling noise on 300 documents), and
    # training closes 85% of the gap from the untrained model in log perplexity; 50% for
    # ProdLDA's recipe, whose dropout of θ (Srivastava & Sutton's rate 0.6 of K = 3 topics)
    # regularises the fit (measured: 56%; 79% at Pyro's rate 0.2).
    assert after > 0.97 * true_ppl, (after, true_ppl)
    closed = 0.5 if name == "prodlda" else 0.85
    assert math.log(after / true_ppl) < (1 - closed) * math.log(before / true_ppl), (
        before, after, true_ppl)
    if name in MIXTURES + ("lda",):  # LDA's likelihood is a mixture: the true topics return
        learned = scipy.special.softmax(model.topic_word().numpy(), axis=-1)  # β [K, V]
        distance = 0.5 * np.abs(learned[:, None] - topics[None]).sum(-1)  # total variation
        rows, cols = scipy.optimize.linear_sum_assignment(distance)
        assert distance[rows, cols].max() < 0.1, distance


def test_trainer_end_to_end_on_20news(tmp_path, data_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--model=nvdm", "--dataset=news20",
         f"--data_dir={data_dir}", "--train_steps=3", "--batch_size=16", "--hidden_dim=16",
         "--num_topics=4", "--eval_batch_size=64", "--max_eval_batches=2",
         f"--model_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'export'}"], cwd=REPO,
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["step"] == 3 and result["documents"] == 128
    # 3 steps from NVDM's small Glorot logits: p(w | z) is nearly uniform over V = 2000 words.
    assert abs(math.log(result["ppl"] / 2000)) < 0.1
    assert abs(math.log(result["ppl_corpus"] / 2000)) < 0.1
    assert result["kl"] >= 0 and -1 <= result["npmi"] <= 1
    topic_lines = [line for line in proc.stdout.splitlines() if line.startswith("topic ")]
    assert len(topic_lines) == 4 and all(len(line.split()) == 6 + 10 for line in topic_lines)
    assert 0 < result["diversity"] <= 1
    # The same topics, as a table in TensorBoard, beside the diversity as a scalar.
    events = summaries.read_events(str(tmp_path / "run" / "summaries"))
    (_, table), = events["test/topics"]
    (_, diversity), = events["test/diversity"]
    np.testing.assert_allclose(diversity, result["diversity"], rtol=1e-6)
    rows = [row.split(" | ") for row in table.item().decode().splitlines()[2:]]
    assert [row[3].rstrip(" |") for row in rows] == [
        " ".join(line.split()[6:]) for line in topic_lines]
    assert [float(row[2]) for row in rows] == [float(line.split()[5]) for line in topic_lines]
    # The SavedModel scores raw text by its ELBO (≈ 3 log(1/V) − KL, nearly untrained).
    scored = tf.saved_model.load(str(tmp_path / "export")).signatures["score"](
        text=tf.constant(["people like people"]))
    assert scored["tokens"].numpy().tolist() == [3.0]
    assert -3 * math.log(4000) < scored["log_prob"].numpy()[0] < -3 * math.log(1000)


@pytest.mark.parametrize("epsilon, momentum", [(1e-3, 0.99), (1e-5, 0.9)])  # Keras', torch's
def test_batch_norm_decoder_uses_batch_moments_in_training_and_running_ones_in_evaluation(
        epsilon, momentum):
    decoder = TopicDecoder(7, batch_norm=True, bn_epsilon=epsilon, bn_momentum=momentum)
    theta = tf.nn.softmax(tf.random.stateless_normal([5, 3], seed=[7, 8]) * 2.0)  # [B, K]
    decoder(theta)  # builds; evaluation with the initial running moments (0, 1)
    assert decoder.bias is None  # BN's learned shift stands for b
    norm = decoder.logit_norm
    assert norm.gamma is None and norm.beta is not None  # no scale, as Srivastava & Sutton
    norm.beta.assign(tf.random.stateless_normal([7], seed=[9, 9]))
    logits = theta.numpy().astype(np.float64) @ decoder.topic_logits().numpy()  # [B, V]
    shift = norm.beta.numpy()
    # Training: each word's logit standardised over the batch (biased variance), then shifted.
    out = decoder(theta, training=True).numpy()
    mean, var = logits.mean(0), logits.var(0)
    expected = scipy.special.log_softmax((logits - mean) / np.sqrt(var + epsilon) + shift, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # ... and the running moments move toward the batch's by 1 − momentum.
    np.testing.assert_allclose(norm.moving_mean.numpy(), (1 - momentum) * mean,
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(norm.moving_variance.numpy(),
                               momentum + (1 - momentum) * var, rtol=1e-4)
    # Evaluation: the running moments, unchanged by the call; a sample axis [S, B, K] is allowed.
    moving = norm.moving_mean.numpy().astype(np.float64), norm.moving_variance.numpy()
    expected = scipy.special.log_softmax(
        (logits - moving[0]) / np.sqrt(moving[1] + epsilon) + shift, -1)
    np.testing.assert_allclose(decoder(theta).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(decoder(tf.stack([theta, theta])).numpy(), [expected] * 2,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(norm.moving_mean.numpy(), moving[0].astype(np.float32))
    with pytest.raises(ValueError, match="mixture decoder has none"):
        TopicDecoder(7, mixture=True, batch_norm=True)


def test_prodlda_recipe_wiring_dropout_and_batch_norm_at_training_and_evaluation():
    keras.utils.set_random_seed(3)
    model = make_model("prodlda")  # Srivastava & Sutton's recipe by default
    assert model.recipe == "srivastava_sutton" and model.adam_beta_1 == 0.99
    assert model.encoder_dropout.rate == model.theta_dropout.rate == 0.6  # their keep_prob 0.4
    assert model.decoder.batch_norm and model.head.loc_norm.gamma is None
    old = make_model("prodlda_nvdm")
    assert old.adam_beta_1 == 0.9 and old.theta_dropout.rate == 0.0 and not old.decoder.batch_norm
    rng = np.random.default_rng(4)
    counts = tf.constant(rng.poisson(2.0, size=(16, 12)), tf.float32)
    noise = tf.constant(rng.standard_normal((16, 3)), tf.float32)
    q = model.posterior(counts)  # evaluation: no dropout, running moments: deterministic
    other = model.posterior(counts)
    np.testing.assert_array_equal(q.loc.numpy(), other.loc.numpy())
    # The posterior's moments are batch-normalised in training: over the batch, each dimension
    # of the mean has mean BN's shift (0 at the start) and variance 1 (up to BN's ε), with or
    # without the encoder's dropout.
    loc = model.posterior(counts, training=True).loc.numpy()
    np.testing.assert_allclose(loc.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(loc.var(0), 1.0, rtol=1e-2)
    # Dropout on the encoder: two training passes give two posteriors (the KL differs) ...
    kls = [model.elbo_terms(counts, noise, training=True).kl.numpy() for _ in range(2)]
    assert np.abs(kls[0] - kls[1]).max() > 1e-3
    # ... and on θ: under one fixed q the reconstruction still differs between training passes
    recons = [model.elbo_under(q, counts, noise, training=True).reconstruction.numpy()
              for _ in range(2)]
    assert np.abs(recons[0] - recons[1]).max() > 1e-3
    # while evaluation is deterministic, and the old recipe has no dropout in training either.
    evals = [model.elbo_terms(counts, noise).elbo.numpy() for _ in range(2)]
    np.testing.assert_array_equal(evals[0], evals[1])
    trains = [old.elbo_terms(counts, noise, training=True).elbo.numpy() for _ in range(2)]
    np.testing.assert_array_equal(trains[0], trains[1])
    # The trainer's Adam takes the recipe's β1.
    from trainers.loop import Trainer
    trainer = Trainer(lambda: make_model("prodlda"), tf.distribute.get_strategy(), 16, 2e-3, 0.0)
    assert trainer.optimizer.beta_1 == 0.99


def test_recipe_config_round_trip_and_errors():
    model = make_model("prodlda")
    assert model.get_config()["recipe"] == "srivastava_sutton"
    assert ProdLDA.from_config(model.get_config()).get_config() == model.get_config()
    read = set()
    built = ProdLDA.from_corpus(types.SimpleNamespace(info={"vocab_size": 12}), num_topics=3,
                                hidden_dim=8, num_layers=1, embed_dim=4, read=read)
    assert built.get_config()["hidden_units"] == [100, 100]  # the recipe's encoder
    assert built.get_config()["activation"] == "softplus" and "hidden_dim" not in read
    with pytest.raises(ValueError, match="ProdLDA's"):
        GSM(vocab_size=5, topic_model="gsm", recipe="srivastava_sutton")
    with pytest.raises(ValueError, match="unknown recipe"):
        ProdLDA(vocab_size=5, topic_model="prodlda", recipe="lda")
    with pytest.raises(ValueError, match="take recipe 'nvdm'"):
        ProdLDA(vocab_size=5, topic_model="prodlda", topic_decoder="mixture")


TORCH_LIKE = ("srivastava_sutton:bn_epsilon=1e-5,bn_momentum=0.9,initializer=torch,clip_norm=0,"
              "prior=standard_normal")  # Pyro's ProdLDA's settings (bench/prodlda_pyro.py)


def test_recipe_settings_reach_every_batch_norm_initialiser_prior_and_the_trainer():
    from trainers.loop import Trainer
    keras.utils.set_random_seed(5)
    vocab, hidden, topics = 400, 300, 3
    build = lambda recipe: ProdLDA(vocab_size=vocab, topic_model="prodlda", num_topics=topics,
                                   hidden_units=(hidden,), recipe=recipe)
    counts = tf.constant(np.random.default_rng(0).poisson(1.0, (4, vocab)), tf.float32)
    model, default = build(TORCH_LIKE), build(None)
    for m in (model, default):
        m.objective({"counts": counts})  # builds
    norms = lambda m: [m.head.loc_norm, m.head.log_variance_norm, m.decoder.logit_norm]
    assert all(n.epsilon == 1e-5 and n.momentum == 0.9 for n in norms(model))
    assert all(n.epsilon == 1e-3 and n.momentum == 0.99 for n in norms(default))
    # PyTorch's nn.Linear: weights and bias U(−1/√fan_in, 1/√fan_in), variance 1 / (3 fan_in);
    # the decoder's R [K, V] is nn.Linear(K, V)'s weight, fan-in K.
    for weight, fan_in in [(model.encoder.dense_0.kernel, vocab), (model.encoder.dense_0.bias, vocab),
                           (model.head.dense.kernel, hidden), (model.head.dense.bias, hidden),
                           (model.decoder.topic_word, topics)]:
        w, bound = weight.numpy(), 1.0 / math.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.all(w != 0)
        if w.size > 1000:  # fills the interval, with its variance
            assert np.abs(w).max() > 0.99 * bound
            np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.05)
    # Glorot's (Keras' and Srivastava & Sutton's code's): U(±√(6 / (fan_in + fan_out))), zero bias.
    assert not default.encoder.dense_0.bias.numpy().any() and not default.head.dense.bias.numpy().any()
    bound = math.sqrt(6.0 / (topics + vocab))
    assert bound * 0.9 < np.abs(default.decoder.topic_word.numpy()).max() <= bound
    # The prior: N(0, I) against the Laplace approximation of Dir(1) (σ² = 1 − 2/K + 1/K).
    np.testing.assert_allclose(model.prior().stddev().numpy(), 1.0)
    np.testing.assert_allclose(default.prior().stddev().numpy(), math.sqrt(1 - 1 / topics))
    np.testing.assert_allclose(model.prior().mean().numpy(), 0.0)
    # The trainer's clipping: the recipe's unless --clip_norm was given (recipe_clip_norm=False);
    # recipe "nvdm" has none of its own.
    clip = lambda recipe, own: Trainer(lambda: build(recipe), tf.distribute.get_strategy(), 4,
                                       2e-3, 3.0, recipe_clip_norm=own).optimizer.global_clipnorm
    assert clip(TORCH_LIKE, True) is None and clip(None, True) == 5.0
    assert clip(TORCH_LIKE, False) == 3.0 and clip("nvdm", True) == 3.0
    assert ProdLDA.from_config(model.get_config()).get_config() == model.get_config()


def test_recipe_strings_parse_or_name_what_is_wrong():
    from trainers import flags as tflv_flags
    from tflv.models.topic_models import RECIPES, parse_recipe
    assert parse_recipe("nvdm") == ("nvdm", RECIPES["nvdm"])
    name, settings = parse_recipe("srivastava_sutton:dropout=0.6,clip_norm=0")
    assert name == "srivastava_sutton" and settings == {**RECIPES[name], "dropout": 0.6,
                                                        "clip_norm": 0.0}
    for recipe, message in [("lda", "unknown recipe 'lda'"), ("nvdm:eps=1", "'eps=1' is not"),
                            ("nvdm:dropout", "'dropout' is not"),
                            ("nvdm:dropout=x", "dropout takes a number"),
                            ("srivastava_sutton:initializer=he", "invalid initializer='he'"),
                            ("srivastava_sutton:bn_momentum=1", "invalid bn_momentum=1.0")]:
        with pytest.raises(ValueError, match=message):
            parse_recipe(recipe)
    with pytest.raises(ValueError, match="initializer 'torch' is for recipe 'srivastava_sutton'"):
        make_model("prodlda_nvdm").__class__(vocab_size=5, topic_model="prodlda",
                                              recipe="nvdm:initializer=torch")
    with pytest.raises(ValueError, match="prior 'standard_normal' is ProdLDA's"):
        NVDM(vocab_size=5, topic_model="nvdm", recipe="nvdm:prior=standard_normal")
    with pytest.raises(Exception, match="--topic_recipe: recipe 'nvdm:x=1'"):
        tflv_flags._check_topic_recipe("nvdm:x=1")
    assert tflv_flags._check_topic_recipe(TORCH_LIKE) and tflv_flags._check_topic_recipe(None)


def test_collapse_warning_names_the_remedies():
    with pytest.warns(UserWarning, match=r"topic diversity 0\.050 < 0\.3.*topic_recipe="):
        assert collapse_warning(0.05, kl=4.0) is not None
    with pytest.warns(UserWarning, match=r"mean KL 0\.050 nats < 0\.5"):
        collapse_warning(0.9, kl=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert collapse_warning(0.9, kl=4.0) is None and collapse_warning(0.9) is None
