"""Benchmark: the sentence VAE's posterior-collapse study on PTB, against an LSTM LM baseline.

    python bench/sentence_vae.py [--data_dir=DIR] [--train_steps=300] [--variants=plain,vmf]
        [--eval_sentences=500] [--out=FILE.json]

Each sentence of the Penn Treebank is one example (per-sentence NLL, as Bowman et al. 2016 and
the tutorial's section 6 report). Every variant trains the same small model with the one
training loop (`trainers.loop.Trainer`), on training sentences of at most `--max_words` words
padded to one static length (one traced graph), and is evaluated on the first
`--eval_sentences` test sentences (all lengths, padded to the split's maximum): per-sentence
NLL (importance-sampled with `--iw_samples` proposals; exact for the LM), the ELBO, its KL term,
and, over the whole test split, active units and mutual information. The baseline is
`tflv.models.rnnlm.RNNLM` trained on the same sentences. Prints one JSON line per variant and a
Markdown table for BENCHMARKS.md.

Variants (the tutorial's collapse fixes): plain; word dropout (p = 0.5); linear KL annealing
over half the steps; free bits (λ per dimension); vMF posterior (fixed κ); SA-VAE (refinement
steps); skip connections; the dilated CNN decoder.

#### References
- Bowman et al. (2016). Generating Sentences from a Continuous Space.
- Kim, Wiseman & Rush (2018). A Tutorial on Deep Latent Variable Models of Natural Language,
  section 6.
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
import tensorflow as tf  # noqa: E402

import data  # noqa: E402
from tflv.models.rnnlm import RNNLM  # noqa: E402
from tflv.models.sentence_vae import SentenceVAE  # noqa: E402
from trainers.checkpoints import Checkpoints  # noqa: E402
from trainers.loop import Progress, Trainer  # noqa: E402


def variants(train_steps: int) -> dict[str, dict]:
    """Constructor arguments of each row (on top of the shared sizes)."""
    return {
        "rnnlm": {},
        "plain": {},
        "word_dropout": {"word_dropout": 0.5},
        "annealing": {"kl_schedule": "linear", "kl_warmup_steps": max(train_steps // 2, 1)},
        "free_bits": {"free_bits": 0.25, "free_bits_per_dimension": True},
        "vmf": {"latent": "vmf", "vmf_concentration": 30.0},
        "sa_vae": {"sa_vae_steps": 2, "sa_vae_step_size": 0.5},
        "skip": {"skip_connections": True},
        "cnn": {"decoder": "cnn", "cnn_dilations": [1, 2, 4]},
    }


def build(name: str, options: dict, vocab_size: int, args) -> keras.Model:
    sizes = dict(embed_dim=args.embed_dim, hidden_dim=args.hidden_dim)
    if name == "rnnlm":
        return RNNLM(vocab_size, **sizes)
    return SentenceVAE(vocab_size, latent_dim=args.latent_dim, iw_samples=args.iw_samples,
                       iw_chunk=args.iw_samples, **sizes, **options)


def run_variant(name: str, options: dict, corpus, args) -> dict:
    keras.utils.set_random_seed(args.seed)
    max_len = args.max_words + 1  # + <bos> / <eos>
    train = corpus.dataset("train", "sentences", args.batch_size, shuffle=True, seed=args.seed,
                           repeat=True, max_length=args.max_words, pad_to=max_len)
    trainer = Trainer(lambda: build(name, options, corpus.info["vocab_size"], args),
                      tf.distribute.get_strategy(), global_batch_size=args.batch_size,
                      learning_rate=args.learning_rate, clip_norm=5.0)
    trainer.build(next(iter(train)))
    with tempfile.TemporaryDirectory() as model_dir:
        checkpoints = Checkpoints(trainer.checkpoint, model_dir)
        start = time.perf_counter()
        trainer.train(train, args.train_steps, checkpoints,
                      Progress(args.train_steps, 0, tf.summary.create_noop_writer(),
                               args.log_every, print_fn=lambda line: print(name, line,
                                                                           flush=True)),
                      checkpoint_every=args.train_steps)
        train_seconds = time.perf_counter() - start
    pad = int(max(int(b["lengths"].numpy().max())
                  for b in corpus.dataset("test", "sentences", 1000)))
    test = corpus.dataset("test", "sentences", 100, pad_to=pad).take(
        math.ceil(args.eval_sentences / 100))
    start = time.perf_counter()
    metrics = trainer.evaluate(test)
    row = {"variant": name, "train_steps": args.train_steps,
           "train_seconds": round(train_seconds, 1)}
    if name == "rnnlm":
        sentences = sum(int(b["inputs"].shape[0]) for b in test)
        row.update(sentence_nll=metrics["nll"] * metrics["tokens"] / sentences,
                   ppl=metrics["ppl"], sentences=sentences)
    else:
        row.update({k: metrics[k] for k in ("sentence_nll", "ppl", "elbo", "kl", "sentences")})
        row.update(trainer.model.evaluate_corpus(corpus, "test", 100))
    row["eval_seconds"] = round(time.perf_counter() - start, 1)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| variant | test NLL / sentence (IS) | PPL | −ELBO | KL | active units | MI | "
             "train s |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    fmt = lambda row, key: f"{row[key]:.2f}" if key in row else "–"
    for row in rows:
        neg_elbo = f"{-row['elbo']:.2f}" if "elbo" in row else "–"
        au = f"{row['active_units']:.0f}" if "active_units" in row else "–"
        lines.append(f"| {row['variant']} | {fmt(row, 'sentence_nll')} | {fmt(row, 'ppl')} | "
                     f"{neg_elbo} | {fmt(row, 'kl')} | {au} | "
                     f"{fmt(row, 'mutual_information')} | {row['train_seconds']:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--variants", default=",".join(variants(1)))
    parser.add_argument("--train_steps", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--embed_dim", type=int, default=64)
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--latent_dim", type=int, default=16)
    parser.add_argument("--max_words", type=int, default=40)
    parser.add_argument("--iw_samples", type=int, default=10)
    parser.add_argument("--eval_sentences", type=int, default=500)
    parser.add_argument("--log_every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the rows here (JSON)")
    args = parser.parse_args()
    table = variants(args.train_steps)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(table)}")
    corpus = data.load("ptb", data_dir=args.data_dir)
    rows = []
    for name in names:
        rows.append(run_variant(name, table[name], corpus, args))
        print("ROW " + json.dumps(rows[-1]), flush=True)
    print(markdown(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
