"""Where a trained GSM loses to a trained NVDM on the 20news test split (issue #6's gsm ≤ nvdm).

    python bench/topic_model_gap.py [--gsm_dir=runs/bench_topic_models/gsm_nvdm_50]
        [--nvdm_dir=runs/bench_topic_models/nvdm_nvdm_50] [--oracle_documents=500]
        [--refine_documents=1000] [--refine_steps=100] [--data_dir=DIR]

Both models are rebuilt from their model directories (`trainers.run.restore_run`: the run
description the trainer wrote, the newest readable checkpoint) and scored with one ELBO draw per
test document. Printed:

- per document-length bucket, each model's −ELBO per token and mean KL: whether the gap sits in
  the short documents that dominate the per-document perplexity exp(mean_d −ELBO_d / N_d);
- on the first `--oracle_documents` test documents, GSM's reconstruction Σ_v n_v log Σ_k θ_k β_kv
  at the encoder's θ = g(E_q[z]) and at θ fitted to each document by gradient ascent on the
  simplex (no KL): how much better the learned topics β could explain the documents than the
  inference network does; the entropy of each topic β_k, and how many topics any document
  uses (θ_k > 0.1 in at least 0.5% of those documents);
- on the first `--refine_documents` test documents, each model's per-document perplexity with
  its encoder's q(z | n) and with q's mean and log standard deviation refined for each document
  by `--refine_steps` Adam steps on its ELBO (8 draws a step; both scored with the same 64
  draws): the amortization gap (Cremer et al. 2018) against the gap between the two models.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.run_flags import restore_run  # noqa: E402

flags.DEFINE_string("gsm_dir", "runs/bench_topic_models/gsm_nvdm_50", "A trained gsm run.")
flags.DEFINE_string("nvdm_dir", "runs/bench_topic_models/nvdm_nvdm_50", "A trained nvdm run.")
flags.DEFINE_integer("oracle_documents", 500, "Test documents whose θ is fitted to GSM's topics.")
flags.DEFINE_integer("refine_documents", 1000, "Test documents whose q(z | n) is refined.")
flags.DEFINE_integer("refine_steps", 100, "Adam steps refining each document's q(z | n).")
FLAGS = flags.FLAGS
tfd = tfp.distributions

BUCKETS = ((1, 10), (10, 30), (30, 100), (100, 300), (300, None))


def document_scores(model, corpus) -> np.ndarray:
    """[D, 3]: ELBO, KL and length of every non-empty test document (one draw each)."""
    rows = []
    for i, batch in enumerate(corpus.dataset("test", "bow", 500)):
        counts = batch["counts"]
        noise = tf.random.stateless_normal([tf.shape(counts)[0], model.num_topics], seed=[1, i])
        terms = model.elbo_terms(counts, noise)
        rows.append(np.stack([terms.elbo.numpy(), terms.kl.numpy(),
                              tf.reduce_sum(counts, -1).numpy()], axis=1))
    scores = np.concatenate(rows)
    return scores[scores[:, 2] > 0]


def oracle_reconstruction(gsm, counts: tf.Tensor, steps: int = 300) -> tuple[float, float]:
    """GSM's mean reconstruction at the encoder's θ and at θ fitted per document to its topics."""
    reconstruction = lambda theta: tf.reduce_sum(counts * gsm.decoder(theta), axis=-1)  # [B]
    theta = gsm.topic_proportions(counts)  # [B, K]
    logits = tf.Variable(tf.math.log(theta + 1e-9))
    optimizer = tf.keras.optimizers.Adam(0.1)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(reconstruction(tf.nn.softmax(logits)))
        optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
    return (float(tf.reduce_mean(reconstruction(theta))),
            float(tf.reduce_mean(reconstruction(tf.nn.softmax(logits)))))


def refined_perplexity(model, counts: tf.Tensor, steps: int) -> tuple[float, float]:
    """Per-document perplexity of counts `[B, V]` at the encoder's q and at q refined per document.

    q = N(μ, diag exp(2ρ)) with (μ, ρ) `[B, K]` started at the encoder's output and moved by
    Adam (step 0.02) on Σ_d ELBO_d, each step with 8 fresh draws; both perplexities use the same
    64 draws, so their difference is the refinement's alone.
    """
    posterior = model.posterior(counts)
    loc = tf.Variable(posterior.loc)  # [B, K]
    log_scale = tf.Variable(tf.math.log(posterior.stddev()))  # [B, K]
    shape = lambda draws: [draws, counts.shape[0], model.num_topics]

    def elbo(noise):  # noise [S, B, K] → ELBO [B], the reconstruction averaged over S
        q = tfd.MultivariateNormalDiag(loc, tf.exp(log_scale))
        return model.elbo_under(q, counts, noise).elbo

    score_noise = tf.random.stateless_normal(shape(64), seed=[7, 0])
    length = tf.reduce_sum(counts, -1)
    perplexity = lambda: float(tf.exp(tf.reduce_mean(-elbo(score_noise) / length)))
    before = perplexity()
    optimizer = tf.keras.optimizers.Adam(0.02)

    @tf.function
    def step(seed):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_sum(elbo(tf.random.stateless_normal(shape(8), seed=seed)))
        variables = [loc, log_scale]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for i in range(steps):
        step(tf.constant([i, 1]))
    return before, perplexity()


def topics_in_use(gsm, counts: tf.Tensor) -> int:
    """Topics k with θ_k > 0.1 (at the posterior mean) in at least 0.5% of the documents."""
    share = np.mean(gsm.topic_proportions(counts).numpy() > 0.1, axis=0)  # [K]
    return int(np.sum(share >= 0.005))


def main(argv) -> None:
    del argv
    _, corpus, trainer = restore_run(FLAGS.gsm_dir)
    gsm, nvdm = trainer.model, restore_run(FLAGS.nvdm_dir)[2].model
    scores = {"gsm": document_scores(gsm, corpus), "nvdm": document_scores(nvdm, corpus)}
    length = scores["gsm"][:, 2]
    for name, s in scores.items():
        print(f"{name}: per-document ppl {np.exp(np.mean(-s[:, 0] / s[:, 2])):.1f} "
              f"over {len(s)} documents")
    print("| words | documents | gsm nats/token | gsm KL | nvdm nats/token | nvdm KL | gap |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for low, high in BUCKETS:
        rows = (length >= low) & (length < (high or np.inf))
        per_token = {name: np.mean(-s[rows, 0] / s[rows, 2]) for name, s in scores.items()}
        print(f"| {low}–{high - 1 if high else ''} | {rows.sum()} | {per_token['gsm']:.3f} | "
              f"{scores['gsm'][rows, 1].mean():.1f} | {per_token['nvdm']:.3f} | "
              f"{scores['nvdm'][rows, 1].mean():.1f} | "
              f"{per_token['gsm'] - per_token['nvdm']:.3f} |")
    counts = next(iter(corpus.dataset("test", "bow", FLAGS.oracle_documents)))["counts"]
    encoder, fitted = oracle_reconstruction(gsm, counts)
    print(f"GSM reconstruction per document, first {FLAGS.oracle_documents} test documents: "
          f"encoder θ {encoder:.1f}, θ fitted to each document {fitted:.1f}")
    beta = tf.nn.softmax(gsm.decoder.topic_logits(), axis=-1).numpy()
    entropy = -(beta * np.log(beta + 1e-12)).sum(-1)
    print(f"topic entropies (nats; log V = {np.log(beta.shape[1]):.2f}): min {entropy.min():.2f}"
          f", median {np.median(entropy):.2f}, max {entropy.max():.2f}; topics in use "
          f"{topics_in_use(gsm, counts)} of {gsm.num_topics}")
    counts = next(iter(corpus.dataset("test", "bow", FLAGS.refine_documents)))["counts"]
    counts = tf.boolean_mask(counts, tf.reduce_sum(counts, -1) > 0)
    for name, model in (("gsm", gsm), ("nvdm", nvdm)):
        before, after = refined_perplexity(model, counts, FLAGS.refine_steps)
        print(f"{name}: per-document ppl of the first {FLAGS.refine_documents} test documents: "
              f"encoder q {before:.1f}, q refined per document ({FLAGS.refine_steps} steps) "
              f"{after:.1f}")


if __name__ == "__main__":
    app.run(main)
