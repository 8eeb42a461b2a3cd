"""Benchmark: the mixture of RNN LMs on PTB sentences, trained by three estimators side by side.

    python bench/mixture_lm.py [--data_dir=DIR] [--seconds=120] [--estimators=exact,gumbel_softmax]
        [--num_components=4] [--eval_sentences=500] [--out=FILE.json]

The same model (`tflv.models.mixture_lm.MixtureLM`, K components) is trained with each
`--estimator` for the same wall-clock budget (`--seconds`, with the one training loop
`trainers.loop.Trainer`, in chunks of `--chunk_steps` steps), on training sentences of at most
`--max_words` words padded to one static length. Then, on the first `--eval_sentences` test
sentences: the exact per-sentence NLL −log Σ_k π_k p(x | k) (tractable for every estimator), the
ELBO of its q (the exact posterior for `exact`, else the inference network) with the expectation
enumerated, the KL term and q's entropy. Finally, at the trained weights and on one fixed batch,
`--num_estimates` gradients of the training loss (fresh noise each) give the estimator's total
variance Σ_j Var(ĝ_j) and relative bias ||E ĝ − g|| / ||g||, g being the exact gradient of the
same ELBO (enumeration over the same q), separately for the inference network and the decoder.
Prints one JSON line per estimator and a Markdown table for BENCHMARKS.md.

#### References
- Kim, Wiseman & Rush (2018). A Tutorial on Deep Latent Variable Models of Natural Language,
  sections 4.1 and 5.1–5.2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import data  # noqa: E402
from tflv.models.mixture_lm import ESTIMATORS, MixtureLM  # noqa: E402
from trainers.checkpoints import Checkpoints  # noqa: E402
from trainers.loop import Progress, Trainer  # noqa: E402


def gradient_statistics(model, batch, num_estimates: int) -> dict:
    """Total variance and relative bias of the training gradient against the exact one."""
    groups = {"decoder": model.decoder.trainable_variables + [model.codes, model.prior_logits]}
    if model.config["estimator"] != "exact":
        groups["inference"] = model.encoder.trainable_variables + model.head.trainable_variables
    variables = [v for group in groups.values() for v in group]

    def flat_gradient(training: bool):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(batch, training=training).loss)
        return tf.concat([tf.reshape(tf.convert_to_tensor(g), [-1])
                          for g in tape.gradient(loss, variables)], 0)

    exact = flat_gradient(False).numpy()  # enumeration over the same q: the exact gradient
    draw = tf.function(lambda: flat_gradient(True))
    draws = np.stack([draw().numpy() for _ in range(num_estimates)])  # [R, P]
    stats, offset = {}, 0
    for name, group in groups.items():
        size = sum(int(np.prod(v.shape)) for v in group)
        part, ref = draws[:, offset:offset + size], exact[offset:offset + size]
        offset += size
        stats[f"{name}_variance"] = float(part.var(axis=0, ddof=1).sum())
        stats[f"{name}_relative_bias"] = float(np.linalg.norm(part.mean(0) - ref)
                                               / max(np.linalg.norm(ref), 1e-12))
    return stats


def run_estimator(estimator: str, corpus, args) -> dict:
    keras.utils.set_random_seed(args.seed)
    train = corpus.dataset("train", "sentences", args.batch_size, shuffle=True, seed=args.seed,
                           repeat=True, max_length=args.max_words, pad_to=args.max_words + 1)
    options = {} if estimator == "exact" else {"num_samples": args.latent_samples}
    if estimator == "score_function":
        options["baseline"] = args.baseline
    if estimator == "gumbel_softmax":
        options["temperature"] = args.temperature
    trainer = Trainer(lambda: MixtureLM(corpus.info["vocab_size"], args.num_components,
                                        args.embed_dim, args.hidden_dim,
                                        code_dim=args.code_dim, estimator=estimator, **options),
                      tf.distribute.get_strategy(), global_batch_size=args.batch_size,
                      learning_rate=args.learning_rate, clip_norm=5.0)
    fixed = next(iter(train))
    trainer.build(fixed)
    with tempfile.TemporaryDirectory() as model_dir:
        checkpoints = Checkpoints(trainer.checkpoint, model_dir)
        progress = Progress(10 ** 9, 0, tf.summary.create_noop_writer(), args.chunk_steps,
                            print_fn=lambda line: print(estimator, line, flush=True))
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            trainer.train(train, trainer.step + args.chunk_steps, checkpoints, progress,
                          checkpoint_every=10 ** 9)
        train_seconds = time.perf_counter() - start
    pad = int(max(int(b["lengths"].numpy().max())
                  for b in corpus.dataset("test", "sentences", 1000)))
    test = corpus.dataset("test", "sentences", 100, pad_to=pad).take(
        math.ceil(args.eval_sentences / 100))
    metrics = trainer.evaluate(test)
    row = {"estimator": estimator, "steps": trainer.step, "train_seconds": round(train_seconds, 1),
           **{k: metrics[k] for k in ("sentence_nll", "ppl", "elbo", "kl", "posterior_entropy",
                                      "sentences")}}
    row.update(gradient_statistics(trainer.model, fixed, args.num_estimates))
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| estimator | steps in budget | test NLL / sentence (exact) | PPL | −ELBO | KL | "
             "H[q] | Var (inference) | rel. bias (inference) | Var (decoder) | "
             "rel. bias (decoder) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    get = lambda row, key, spec: format(row[key], spec) if key in row else "–"
    for row in rows:
        lines.append(
            f"| {row['estimator']} | {row['steps']} | {row['sentence_nll']:.2f} | "
            f"{row['ppl']:.1f} | {-row['elbo']:.2f} | {row['kl']:.3f} | "
            f"{row['posterior_entropy']:.3f} | {get(row, 'inference_variance', '.3g')} | "
            f"{get(row, 'inference_relative_bias', '.3f')} | {row['decoder_variance']:.3g} | "
            f"{row['decoder_relative_bias']:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--chunk_steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--num_components", type=int, default=4)
    parser.add_argument("--embed_dim", type=int, default=64)
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--code_dim", type=int, default=16)
    parser.add_argument("--latent_samples", type=int, default=1)
    parser.add_argument("--baseline", default="none", choices=("none", "learned",
                                                               "leave_one_out"))
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max_words", type=int, default=40)
    parser.add_argument("--eval_sentences", type=int, default=500)
    parser.add_argument("--num_estimates", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the rows here (JSON)")
    args = parser.parse_args()
    names = args.estimators.split(",")
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        parser.error(f"unknown estimators {unknown}; known: {', '.join(ESTIMATORS)}")
    corpus = data.load("ptb", data_dir=args.data_dir)
    rows = []
    for name in names:
        rows.append(run_estimator(name, corpus, args))
        print("ROW " + json.dumps(rows[-1]), flush=True)
    print(markdown(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
