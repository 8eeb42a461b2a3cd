"""CoNLL-2000: unsupervised POS induction with `hmm` (EM and gradient) and `neural_hmm`.

    python bench/hmm_taggers.py [--runs=hmm_em,hmm_gradient,neural_hmm] [--num_states=45]
        [--em_steps=1000] [--gradient_steps=1000] [--neural_steps=600] [--batch_size=256]

Each run is the real command line (`python -m trainers.train --dataset=conll2000 ...`) from a
fresh model directory; the printed Markdown rows give the test split's many-to-one and
one-to-one accuracy and V-measure of the Viterbi states against the gold POS tags (all 47,377
test words), the per-word test perplexity (no end-of-sentence symbol), steps, batch size, wall
time and the command. The EM run is stepwise EM (Liang & Klein 2009), one update per mini-batch.
The published EM baselines (Johnson 2007 and later) are on the full 45-tag WSJ (about 1.17M
words), not on this 259k-word public subset, so they sit beside these rows in BENCHMARKS.md as a
rough guide only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runs(args) -> dict[str, list[str]]:
    """Per run name, its model flags."""
    return {
        "hmm_em": ["--model=hmm", "--hmm_training=em", f"--em_decay={args.em_decay}",
                   f"--train_steps={args.em_steps}"],
        "hmm_gradient": ["--model=hmm", "--hmm_training=gradient",
                         f"--learning_rate={args.gradient_learning_rate}",
                         f"--train_steps={args.gradient_steps}"],
        "neural_hmm": ["--model=neural_hmm", f"--neural_transitions={args.neural_transitions}",
                       f"--embed_dim={args.embed_dim}", f"--hidden_dim={args.hidden_dim}",
                       f"--learning_rate={args.neural_learning_rate}",
                       f"--train_steps={args.neural_steps}"],
    }


def train(flags: list[str]) -> tuple[dict, float, list[str]]:
    command = [sys.executable, "-m", "trainers.train", *flags]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), time.perf_counter() - start, command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="hmm_em,hmm_gradient,neural_hmm")
    parser.add_argument("--num_states", type=int, default=45)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--em_steps", type=int, default=1000)
    parser.add_argument("--em_decay", type=float, default=0.7)
    parser.add_argument("--gradient_steps", type=int, default=1000)
    parser.add_argument("--gradient_learning_rate", type=float, default=0.05)
    parser.add_argument("--neural_steps", type=int, default=600)
    parser.add_argument("--neural_transitions", default="mlp")
    parser.add_argument("--neural_learning_rate", type=float, default=0.01)
    parser.add_argument("--embed_dim", type=int, default=64)
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model_root", default="runs/bench_hmm_taggers")
    args = parser.parse_args()
    table = runs(args)
    unknown = set(args.runs.split(",")) - set(table)
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}; choose from {sorted(table)}")
    common = ["--dataset=conll2000", f"--num_states={args.num_states}",
              f"--batch_size={args.batch_size}", f"--seed={args.seed}", "--log_every=100",
              "--eval_batch_size=512"]
    print("| run | states | steps | batch | test many-to-one | one-to-one | V-measure | "
          "test ppl (per word) | wall s | command |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in args.runs.split(","):
        flags = [*table[name], *common, f"--model_dir={args.model_root}/{name}"]
        result, seconds, command = train(flags)
        shown = " ".join(["python -m trainers.train", *flags])
        print(f"| {name} | {args.num_states} | {result['step']} | {args.batch_size} | "
              f"{result['many_to_one']:.3f} | {result['one_to_one']:.3f} | "
              f"{result['v_measure']:.3f} | {result['ppl']:.1f} | {seconds:.0f} | `{shown}` |",
              flush=True)


if __name__ == "__main__":
    main()
