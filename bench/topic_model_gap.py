"""Where a trained GSM loses to a trained NVDM on the 20news test split (issue #6's gsm ≤ nvdm).

    python bench/topic_model_gap.py [--gsm_dir=runs/bench_topic_models/gsm_nvdm_50]
        [--nvdm_dir=runs/bench_topic_models/nvdm_nvdm_50] [--oracle_documents=500]
        [--data_dir=DIR]

Both models are rebuilt from their model directories (`trainers.train.restore_run`: the run
description the trainer wrote, the newest readable checkpoint) and scored with one ELBO draw per test document. Printed:

- per document-length bucket, each model's −ELBO per token and mean KL: whether the gap sits in
  the short documents that dominate the per-document perplexity exp(mean_d −ELBO_d / N_d);
- on the first `--oracle_documents` test documents, GSM's reconstruction Σ_v n_v log Σ_k θ_k β_kv
  at the encoder's θ = g(E_q[z]) and at θ fitted to each document by gradient ascent on the
  simplex (no KL): how much better the learned topics β could explain the documents than the
  inference network does; and the entropy of each topic β_k.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.train import restore_run  # noqa: E402

flags.DEFINE_string("gsm_dir", "runs/bench_topic_models/gsm_nvdm_50", "A trained gsm run.")
flags.DEFINE_string("nvdm_dir", "runs/bench_topic_models/nvdm_nvdm_50", "A trained nvdm run.")
flags.DEFINE_integer("oracle_documents", 500, "Test documents whose θ is fitted to GSM's topics.")
FLAGS = flags.FLAGS

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
    """GSM's mean reconstruction at the encoder's θ and at θ fitted per document to β."""
    beta = tf.nn.softmax(gsm.decoder.topic_logits(), axis=-1)  # [K, V]
    reconstruction = lambda theta: tf.reduce_sum(
        counts * tf.math.log(tf.matmul(theta, beta) + 1e-30), axis=-1)  # [B]
    theta = gsm.topic_proportions(counts)  # [B, K]
    logits = tf.Variable(tf.math.log(theta + 1e-9))
    optimizer = tf.keras.optimizers.Adam(0.1)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(reconstruction(tf.nn.softmax(logits)))
        optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
    return (float(tf.reduce_mean(reconstruction(theta))),
            float(tf.reduce_mean(reconstruction(tf.nn.softmax(logits)))))


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
          f", median {np.median(entropy):.2f}, max {entropy.max():.2f}")


if __name__ == "__main__":
    app.run(main)
