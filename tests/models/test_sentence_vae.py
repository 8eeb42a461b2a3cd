"""SentenceVAE: log p(x) by quadrature over a 1-d (or circular) latent as the reference for the
importance-sampled NLL and the ELBO; closed-form KL terms; every collapse switch checked against
the objective it should produce; one end-to-end run of the trainer, the SavedModel and the
sampling CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tflv import summaries
from tflv.layers.cnn_decoder import CNNDecoder
from tflv.models.sentence_vae import SentenceVAE, kl_weight

tfd = tfp.distributions
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V = 10


def sentences_batch(rows):
    """A `sentences` batch from word-id lists (ids 4 … V-1)."""
    t = max(len(r) for r in rows) + 1
    pad = lambda seq: seq + [0] * (t - len(seq))
    return {"inputs": tf.constant([pad([2] + r) for r in rows], tf.int32),
            "targets": tf.constant([pad(r + [3]) for r in rows], tf.int32),
            "mask": tf.constant([pad([1.0] * (len(r) + 1)) for r in rows], tf.float32),
            "lengths": tf.constant([len(r) + 1 for r in rows], tf.int32)}


BATCH = sentences_batch([[4, 5, 6], [7, 8], [9, 4, 4, 5]])


def make_model(**kwargs):
    """A tiny model whose decoder depends strongly on z (so posterior and prior differ)."""
    model = SentenceVAE(V, embed_dim=4, hidden_dim=8, **{"latent_dim": 1, "iw_chunk": 1000,
                                                          **kwargs})
    model.objective(BATCH)
    if model.config["decoder"] == "rnn":
        kernel = model.decoder.cells[0].cell.kernel  # [E + D, 4H]: the last D rows read z
        d = model.config["latent_dim"]
        rows = np.random.default_rng(0).normal(0.0, 1.5, size=(d, kernel.shape[1]))
        kernel.assign(tf.concat([kernel[:-d], tf.constant(rows, tf.float32)], axis=0))
    return model


def tiled(batch, copies):
    return {k: tf.tile(v, [copies] + [1] * (v.shape.rank - 1)) for k, v in batch.items()}


def log_likelihood_grid(model, z):
    """log p(x | z_g) for grid codes z `[G, D]`: `[G, B]` float64."""
    b = BATCH["inputs"].shape[0]
    zs = tf.tile(tf.constant(z, tf.float32)[:, None, :], [1, b, 1])  # [G, B, D]
    return model.log_likelihood(BATCH["inputs"], BATCH["targets"], BATCH["mask"], zs).numpy() \
        .astype(np.float64)


def gaussian_quadrature(model):
    """log p(x) and the ELBO of the base Gaussian q, by quadrature on z ∈ [-10, 10] (float64)."""
    z = np.linspace(-10.0, 10.0, 2001)
    dz = z[1] - z[0]
    log_lik = log_likelihood_grid(model, z[:, None])  # [G, B]
    log_px = scipy.special.logsumexp(log_lik + scipy.stats.norm.logpdf(z)[:, None], axis=0) + \
        np.log(dz)  # [B]
    loc, scale = model.head(model.encoder(BATCH["targets"], mask=BATCH["mask"] > 0))
    loc, scale = loc.numpy()[:, 0].astype(np.float64), scale.numpy()[:, 0].astype(np.float64)
    q_density = scipy.stats.norm.pdf(z[:, None], loc, scale) * dz  # [G, B]
    kl = np.log(1.0 / scale) + (scale ** 2 + loc ** 2 - 1.0) / 2.0
    return log_px, (q_density * log_lik).sum(axis=0) - kl, kl


def check_importance_sampled_nll(model, log_px=None):
    """The model's IS estimate equals log-mean-exp of the weights of its own K proposals, and
    (given a reference log p(x)) lies within 5 standard errors of it (delta method, from the
    weights; meaningful for a proposal with light-tailed weights)."""
    nll = model.objective(BATCH).stats["nll"].numpy()
    q = model.posterior(BATCH)
    k = model.config["iw_samples"]
    z, log_q = q.experimental_sample_and_log_prob(k, seed=model.step.seed(2))  # [K, B, D]
    log_w = (model.log_likelihood(BATCH["inputs"], BATCH["targets"], BATCH["mask"], z)
             + model.prior().log_prob(z) - log_q).numpy().astype(np.float64)  # [K, B]
    estimate = scipy.special.logsumexp(log_w, axis=0) - np.log(k)
    np.testing.assert_allclose(-nll, estimate, rtol=1e-5)
    if log_px is not None:
        w = np.exp(log_w - log_w.max(axis=0))
        standard_error = w.std(axis=0) / (np.sqrt(k) * w.mean(axis=0))
        assert np.all(np.abs(estimate - log_px) < 5 * standard_error + 1e-3), \
            (estimate - log_px, standard_error)


def flow_elbo_quadrature(model):
    """ELBO of q = f#q0 by quadrature over the base variable x (D = 1): with z = f(x),
    ∫ q0(x) [log p(data | f(x)) + log p(f(x)) − log q0(x) + log |f'(x)|] dx (float64)."""
    q = model.posterior(BATCH)
    loc, scale = q.distribution.mean().numpy(), q.distribution.stddev().numpy()  # [B, 1]
    t = np.linspace(-8.0, 8.0, 2001)
    x = tf.constant(loc[None] + scale[None] * t[:, None, None], tf.float32)  # [G, B, 1]
    z = q.bijector.forward(x)
    log_det = q.bijector.forward_log_det_jacobian(x, event_ndims=1)  # [G, B]
    integrand = (model.log_likelihood(BATCH["inputs"], BATCH["targets"], BATCH["mask"], z)
                 + model.prior().log_prob(z) - q.distribution.log_prob(x) + log_det)
    weights = scipy.stats.norm.pdf(t) * (t[1] - t[0])  # q0(x) dx on the standardized grid
    return (weights[:, None] * integrand.numpy().astype(np.float64)).sum(axis=0)


def test_gaussian_elbo_kl_and_importance_sampled_nll_against_quadrature():
    model = make_model(iw_samples=1000)
    log_px, quad_elbo, kl = gaussian_quadrature(model)
    assert np.all(quad_elbo < log_px - 0.05)  # a real gap: q is not the posterior
    check_importance_sampled_nll(model, log_px)
    model.config["iw_samples"] = 0
    stats = model.objective(tiled(BATCH, 300)).stats  # 300 independent one-sample ELBOs per row
    np.testing.assert_allclose(stats["kl"][:3], kl, rtol=1e-4)  # closed form
    elbos = stats["elbo"].numpy().reshape(300, 3)
    z = (elbos.mean(0) - quad_elbo) / (elbos.std(0, ddof=1) / np.sqrt(300))
    assert np.all(np.abs(z) < 4.0), z


@pytest.mark.parametrize("flow", ["planar", "iaf"])
def test_flow_elbo_matches_quadrature_over_the_base_variable(flow):
    model = make_model(flow=flow, num_flows=2, iw_samples=200)
    log_px, _, _ = gaussian_quadrature(model)
    check_importance_sampled_nll(model)
    reference = flow_elbo_quadrature(model)
    assert np.all(reference < log_px)
    # One-sample ELBOs: the KL is the Monte Carlo log q(z) − log p(z) at the flowed sample.
    model.config["iw_samples"] = 0
    elbos = model.objective(tiled(BATCH, 300)).stats["elbo"].numpy().reshape(300, 3)
    z = (elbos.mean(0) - reference) / (elbos.std(0, ddof=1) / np.sqrt(300))
    assert np.all(np.abs(z) < 4.0), z


def test_vmf_kl_is_the_closed_form_constant_and_nll_matches_circle_quadrature():
    kappa = 5.0
    model = make_model(latent="vmf", latent_dim=2, vmf_concentration=kappa, iw_samples=1000)
    theta = np.linspace(0.0, 2 * np.pi, 2000, endpoint=False)
    log_lik = log_likelihood_grid(model, np.stack([np.cos(theta), np.sin(theta)], axis=1))
    log_px = scipy.special.logsumexp(log_lik, axis=0) - np.log(len(theta))  # uniform prior
    check_importance_sampled_nll(model, log_px)
    # D = 2: KL(vMF || U) = κ I1(κ)/I0(κ) − log I0(κ), the same for every sentence.
    kl = kappa * scipy.special.ive(1, kappa) / scipy.special.ive(0, kappa) - \
        (np.log(scipy.special.ive(0, kappa)) + kappa)
    np.testing.assert_allclose(model.objective(BATCH).stats["kl"], np.full(3, kl), rtol=1e-4)


def test_kl_schedules():
    t = tf.constant(30)
    np.testing.assert_allclose(kl_weight("linear", t, 100), 0.3, rtol=1e-6)
    np.testing.assert_allclose(kl_weight("sigmoid", t, 100), 1 / (1 + np.exp(-0.1 * (30 - 50))),
                               rtol=1e-6)
    np.testing.assert_allclose(kl_weight("cyclical", tf.constant(130), 100), 0.6, rtol=1e-6)
    np.testing.assert_allclose(kl_weight("none", t, 100), 1.0)


def test_annealing_reads_the_step_and_advances_it():
    model = make_model(latent_dim=2, kl_schedule="linear", kl_warmup_steps=10)
    model.step.count.assign(4)
    objective = model.objective(BATCH, training=True)
    s = objective.stats
    np.testing.assert_allclose(objective.loss, -(s["reconstruction"] - 0.4 * s["kl"]), rtol=1e-5)
    assert int(model.step.value) == 5
    model.objective(BATCH, training=False)
    assert int(model.step.value) == 5  # evaluation does not advance it


@pytest.mark.parametrize("per_dimension", [False, True])
def test_free_bits_makes_a_small_kl_free(per_dimension):
    model = make_model(latent_dim=2, free_bits=100.0, free_bits_per_dimension=per_dimension)
    with tf.GradientTape(persistent=True) as tape:
        objective = model.objective(BATCH, training=True)
        reconstruction = objective.stats["reconstruction"]
    budget = 100.0 * (2 if per_dimension else 1)
    np.testing.assert_allclose(objective.loss, budget - reconstruction, rtol=1e-5)
    head = model.head.trainable_variables
    for a, b in zip(tape.gradient(objective.loss, head), tape.gradient(reconstruction, head)):
        np.testing.assert_allclose(a, -b, rtol=1e-5, atol=1e-7)  # no gradient from the KL


def test_word_dropout_replaces_decoder_inputs_in_training_only():
    model = make_model(latent_dim=2, word_dropout=1.0)
    trained = model.objective(BATCH, training=True).stats["reconstruction"]  # seed (0, 1)
    z = model.posterior(BATCH).sample(1, seed=tf.constant([0, 1]))
    inputs = BATCH["inputs"].numpy()
    unk = np.where(inputs > 3, 1, inputs)  # every word → <unk>; <bos> and padding kept
    expected = model.log_likelihood(tf.constant(unk), BATCH["targets"], BATCH["mask"], z)[0]
    np.testing.assert_allclose(trained, expected, rtol=1e-5)
    model.step.count.assign(0)
    evaluated = model.objective(BATCH, training=False).stats["reconstruction"]
    kept = model.log_likelihood(BATCH["inputs"], BATCH["targets"], BATCH["mask"], z)[0]
    np.testing.assert_allclose(evaluated, kept, rtol=1e-5)


@pytest.mark.parametrize("max_grad_norm", [0.0, 1e-3])
def test_sa_vae_posterior_is_one_gradient_step_on_the_elbo(max_grad_norm):
    model = make_model(latent_dim=2, sa_vae_steps=1, sa_vae_step_size=0.5,
                       sa_vae_max_grad_norm=max_grad_norm)
    refined = model.posterior(BATCH)
    loc, scale = model.head(model.encoder(BATCH["targets"], mask=BATCH["mask"] > 0))
    params = [loc, tf.math.log(scale)]
    with tf.GradientTape() as tape:
        tape.watch(params)
        q = tfd.MultivariateNormalDiag(params[0], tf.exp(params[1]))
        z = q.sample(seed=model.step.seed(100))  # the refinement's sample at step 0
        log_lik = model.log_likelihood(BATCH["inputs"], BATCH["targets"], BATCH["mask"], z[None])
        value = tf.reduce_sum(log_lik[0] - tfd.kl_divergence(q, model.prior()))
    grads = tape.gradient(value, params)
    assert np.abs(grads[0].numpy()).max() > 1e-3  # a real step
    # Each example's gradient (over loc and log scale jointly) clipped to the norm, if any.
    norms = np.sqrt(np.sum(grads[0].numpy() ** 2 + grads[1].numpy() ** 2, axis=1, keepdims=True))
    clip = np.minimum(1.0, max_grad_norm / norms) if max_grad_norm else 1.0
    assert max_grad_norm == 0 or np.all(clip < 1)  # the small norm does clip every example
    np.testing.assert_allclose(refined.loc, loc + 0.5 * clip * grads[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(refined.stddev(), tf.exp(params[1] + 0.5 * clip * grads[1]),
                               rtol=1e-4)


def test_decoder_switches_and_invalid_combinations():
    cnn = make_model(latent_dim=2, decoder="cnn", cnn_dilations=[1, 2], skip_connections=True)
    assert isinstance(cnn.decoder, CNNDecoder) and cnn.decoder.dilations == [1, 2]
    assert cnn.decoder.projection.kernel.shape[0] == 8 + 2  # [h; z]: skip connection to output
    with pytest.raises(ValueError, match="flow needs latent='gaussian'"):
        SentenceVAE(V, latent="vmf", flow="iaf")
    with pytest.raises(ValueError, match="sa_vae_steps"):
        SentenceVAE(V, flow="planar", sa_vae_steps=2)
    with pytest.raises(ValueError, match="kl_schedule must be one of"):
        SentenceVAE(V, kl_schedule="exponential")


@pytest.mark.slow
def test_trainer_export_and_sampling_cli(tmp_path, capsys):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--model=sentence_vae", "--dataset=synthetic_hmm",
         "--embed_dim=8", "--hidden_dim=16", "--latent_dim=4", "--batch_size=8",
         "--eval_batch_size=100", "--train_steps=3", f"--model_dir={run_dir}", "--iw_samples=2",
         "--kl_schedule=linear", "--kl_warmup_steps=4", "--word_dropout=0.3",
         f"--export_dir={tmp_path / 'export'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    for name in ("elbo", "kl", "nll", "ppl", "sentence_nll", "active_units",
                 "mutual_information"):
        assert np.isfinite(result[name]), name
    assert result["kl"] >= 0 and result["sentence_nll"] <= -result["elbo"] + 0.5
    np.testing.assert_allclose(result["ppl"], np.exp(result["nll"]), rtol=1e-6)
    # Prior samples, printed and written to TensorBoard.
    printed = [l[len("sample  "):] for l in proc.stdout.splitlines() if l.startswith("sample  ")]
    (_, texts), = summaries.read_events(str(run_dir / "summaries"))["samples/prior"]
    assert len(printed) == 8 and [t.decode() for t in texts] == printed
    assert all("<eos>" not in line and len(line.split()) <= 30 for line in printed), printed
    exported = tf.saved_model.load(str(tmp_path / "export"))
    texts = exported.signatures["homotopy"](
        text=tf.constant(["s1 s2 s3", "s4 s5"]), num_points=tf.constant(4),
        max_length=tf.constant(5), temperature=tf.constant(1.0), seed=tf.constant([1, 2]))["text"]
    assert texts.shape == (4,)
    # The sampling CLI, in this process: rebuild from --model_dir, restore, interpolate.
    from trainers import sample
    sample.FLAGS(["sample", f"--model_dir={run_dir}", "--mode=homotopy", "--num_points=3",
                  "--sentence_a=s1 s2 s3", "--sentence_b=s4 s5", "--sample_length=6",
                  "--temperature=0.01", "--batch_size=8"])
    try:
        sample.main([])
    finally:
        sample.FLAGS.unparse_flags()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(len(l.split()) <= 6 for l in lines), lines
