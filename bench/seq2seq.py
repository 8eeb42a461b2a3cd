"""Multi30k En→De: soft, latent (exact marginal / ELBO) and copy attention at equal size and steps.

    python bench/seq2seq.py [--train_steps=300] [--hidden_dim=64] [--models=seq2seq,...]

Trains each model with the one trainer (`python -m trainers.train`, same seed, data order, sizes
and steps), then prints one Markdown row per model for BENCHMARKS.md: per-token test perplexity
(exact marginal for the latent models), tokenized BLEU of greedy translations on
test_2016_flickr, test_2017_flickr and test_2017_mscoco, the copy switch's posterior share of
copied tokens, the wall time, and the command that reproduces the row.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = {
    "seq2seq": ["--model=seq2seq"],
    "latent_exact": ["--model=latent_attention", "--attention_training=exact"],
    "latent_elbo": ["--model=latent_attention", "--attention_training=elbo"],
    "copy_attention": ["--model=copy_attention"],
}


def train(extra: list[str], common: list[str]) -> tuple[dict, float, list[str]]:
    """Runs the trainer; returns its RESULT metrics, wall seconds and the command."""
    command = [sys.executable, "-m", "trainers.train", *extra, *common]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), time.perf_counter() - start, command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_steps", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--embed_dim", type=int, default=64)
    parser.add_argument("--hidden_dim", type=int, default=64)
    parser.add_argument("--max_length", type=int, default=20)
    parser.add_argument("--models", default=",".join(RUNS))
    parser.add_argument("--model_root", default="runs/bench_seq2seq")
    args = parser.parse_args()
    print("| model | steps | test ppl | BLEU 2016 flickr | BLEU 2017 flickr | BLEU 2017 mscoco "
          "| copied share | wall s | command |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in args.models.split(","):
        common = [f"--train_steps={args.train_steps}", f"--batch_size={args.batch_size}",
                  f"--embed_dim={args.embed_dim}", f"--hidden_dim={args.hidden_dim}",
                  f"--max_length={args.max_length}", "--dataset=multi30k",
                  "--eval_batch_size=32", f"--model_dir={args.model_root}/{name}"]
        result, seconds, command = train(RUNS[name], common)
        shown = " ".join(["python -m trainers.train", *command[3:]])
        copied = f"{result['copied_share']:.3f}" if "copied_share" in result else "–"
        print(f"| {name} | {result['step']} | {result['ppl']:.2f} | {result['bleu']:.2f} "
              f"| {result['bleu_test_2017_flickr']:.2f} | {result['bleu_test_2017_mscoco']:.2f} "
              f"| {copied} | {seconds:.0f} | `{shown}` |", flush=True)


if __name__ == "__main__":
    main()
