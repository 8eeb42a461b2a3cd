"""Blocked vs dense HMM language model: training and evaluation tokens/s and peak memory.

    python bench/hmm_lm.py [--states=1024,4096] [--num_blocks=64] [--embed_dim=128]
        [--batch_size=16] [--length=35] [--steps=3] [--write]

For each K, the same `tflv.layers.blocked_hmm_parameters.BlockedNeuralHMM` (Chiu & Rush 2020
neural parameters, M blocks of S = K/M states, words assigned round-robin by frequency) scores
a batch [B, T] of tokens drawn from a Zipf(1.1) law over V = 10,000 words, in three ways:

* `blocked`: `BlockedHMM.log_prob` — each step touches the S states of x_t's block ((K/M)²).
* `blocked_dropout`: the same with state dropout at rate 0.5, on the kept half of each block's
  states (training only; evaluation always uses all states).
* `dense`: `tflv.distributions.HMM.from_log_potentials` over all K states with the emission
  log-prob -inf outside the word's block — the same likelihood (tests check they agree), at K²
  per step.

Training = log p(x) (the neural parameters computed from the embeddings included), its gradient
and an Adam update, inside `tf.function`; evaluation = log p(x) with all states. tokens/s =
B·T / the median step time over `--steps` steps after one warm-up step (tracing). Peak memory
= the child process's peak resident set size above its RSS just before the first step (each
configuration runs in its own process: evaluation first, then training, so the training figure
is the peak over both). Configurations run one after another on a shared machine, so absolute
figures and ratios carry its load (the 1-minute load average is printed with the rows).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SECTION = "## HMM language model: blocked emissions (Chiu & Rush 2020)"
VOCAB = 10000
IMPLS = ("blocked", "blocked_dropout", "dense")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", default="1024,4096", help="comma-separated K values")
    parser.add_argument("--num_blocks", type=int, default=64)
    parser.add_argument("--embed_dim", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--length", type=int, default=35)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated")
    parser.add_argument("--jit_compile", action="store_true", help="compile the steps with XLA")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md's section")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> dict:
    """Time one (K, implementation) in this process."""
    import numpy as np
    import tensorflow as tf

    from tflv.distributions import HMM, WordBlocks
    from tflv.layers.blocked_hmm_parameters import BlockedNeuralHMM

    k, impl = json.loads(args.child)
    rng = np.random.default_rng(0)
    ranks = np.arange(1, VOCAB + 1)
    probs = ranks ** -1.1 / np.sum(ranks ** -1.1)
    x = tf.constant(rng.choice(VOCAB, size=(args.batch_size, args.length), p=probs), tf.int32)
    blocks = WordBlocks.by_frequency(probs, args.num_blocks)
    tf.keras.utils.set_random_seed(0)
    layer = BlockedNeuralHMM(k, blocks.block_of.tolist(), args.num_blocks,
                             embed_dim=args.embed_dim)
    layer.build()
    s = layer.block_size
    scatter = tf.constant(blocks.block_of[:, None] * s + np.arange(s, dtype=np.int32))  # [V, S]

    def log_likelihood(dropout: bool):
        if impl != "dense":
            kept = layer.keep_states(0.5, seed=(0, 1)) if dropout else None
            return tf.reduce_sum(layer.log_prob(x, kept=kept))
        params = layer(None)
        scores, _ = blocks.token_scores(params.emission, x)  # [B, T, S]
        index = tf.reshape(tf.gather(scatter, x), [-1, s])  # [B T, S] global states
        index = tf.stack([tf.broadcast_to(tf.range(tf.shape(index)[0])[:, None], tf.shape(index)),
                          index], -1)
        shape = [args.batch_size * args.length, k]
        in_block = tf.scatter_nd(index, tf.ones(tf.shape(index)[:2], tf.bool), shape)
        dense = tf.where(in_block, tf.scatter_nd(index, tf.reshape(scores, [-1, s]), shape),
                         tf.constant(-np.inf))
        dense = tf.reshape(dense, [args.batch_size, args.length, k])
        return tf.reduce_sum(HMM.from_log_potentials(params.initial, params.transition,
                                                     dense).log_prob())

    optimizer = tf.keras.optimizers.Adam(1e-3)
    optimizer.build(layer.trainable_variables)

    @tf.function(jit_compile=args.jit_compile)
    def train_step():
        with tf.GradientTape() as tape:
            loss = -log_likelihood(impl == "blocked_dropout")
        grads = tape.gradient(loss, layer.trainable_variables)
        grads = [tf.debugging.check_numerics(g, "gradient") for g in grads]
        optimizer.apply_gradients(zip(grads, layer.trainable_variables))
        return loss

    eval_step = tf.function(lambda: log_likelihood(False), jit_compile=args.jit_compile)
    base = rss_mib()
    result = {"k": k, "impl": impl}
    for name, fn in (("eval", eval_step), ("train", train_step)):
        if name == "eval" and impl == "blocked_dropout":
            continue
        start = time.perf_counter()
        value = float(fn())
        first = time.perf_counter() - start
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            value = float(fn())
            times.append(time.perf_counter() - start)
        if not np.isfinite(value):
            raise FloatingPointError(f"{impl} K={k} {name}: log-likelihood {value}")
        result[name] = dict(tokens_per_s=x.shape[0] * x.shape[1] / statistics.median(times),
                            peak_mib=peak_rss_mib() - base, first_s=first,
                            nats_per_token=abs(value) / (x.shape[0] * x.shape[1]))
    return result


def run_child(args, k: int, impl: str) -> dict:
    argv = [sys.executable, os.path.abspath(__file__), f"--child={json.dumps([k, impl])}",
            f"--num_blocks={args.num_blocks}", f"--embed_dim={args.embed_dim}",
            f"--batch_size={args.batch_size}", f"--length={args.length}",
            f"--steps={args.steps}"] + (["--jit_compile"] if args.jit_compile else [])
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{impl} K={k} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(args, results) -> str:
    rows = ["| K | blocks M (S = K/M) | implementation | train tokens/s | train peak MiB | "
            "eval tokens/s | eval peak MiB | train × dense | eval × dense | eval nats/token |",
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k in sorted({r["k"] for r in results}):
        dense = next((r for r in results if r["k"] == k and r["impl"] == "dense"), None)
        for r in (r for r in results if r["k"] == k):
            def cell(mode, key, fmt):
                return fmt.format(r[mode][key]) if mode in r else "–"

            def ratio(mode):
                if mode not in r or dense is None:
                    return "–"
                return f"{r[mode]['tokens_per_s'] / dense[mode]['tokens_per_s']:.1f}"
            rows.append(f"| {k} | {args.num_blocks} ({k // args.num_blocks}) | {r['impl']} | "
                        f"{cell('train', 'tokens_per_s', '{:.0f}')} | "
                        f"{cell('train', 'peak_mib', '{:.0f}')} | "
                        f"{cell('eval', 'tokens_per_s', '{:.0f}')} | "
                        f"{cell('eval', 'peak_mib', '{:.0f}')} | {ratio('train')} | "
                        f"{ratio('eval')} | {cell('eval', 'nats_per_token', '{:.4f}')} |")
    return "\n".join(rows)


def main():
    args = parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    load_start = os.getloadavg()[0]
    start = time.time()
    results = []
    for k in (int(v) for v in args.states.split(",")):
        for impl in args.impls.split(","):
            results.append(run_child(args, k, impl))
            print(json.dumps(results[-1]), flush=True)
    command = "python bench/hmm_lm.py " + " ".join(a for a in sys.argv[1:] if a != "--write")
    text = (f"{SECTION}\n\nCommand: `{command.strip()}` ({(time.time() - start) / 60:.0f} min). "
            f"B = {args.batch_size} sequences of T = {args.length} tokens (Zipf(1.1) over "
            f"V = {VOCAB}), embedding size {args.embed_dim}, float32, `tf.function` "
            f"{'with XLA (jit_compile)' if args.jit_compile else 'without XLA'}, "
            f"median of {args.steps} steps after a warm-up step. **Loaded machine**: 2 shared "
            f"cores, load average (1 min) {load_start:.1f} at the start and "
            f"{os.getloadavg()[0]:.1f} at the end, configurations run one after another, so "
            "ratios carry the load's drift. Peak MiB = peak RSS above the RSS before the first "
            "step, per process (training includes evaluation's peak). `dense` is the same "
            "likelihood over all K states (emission -inf outside the block): its eval nats/token "
            "equals `blocked`'s (same parameters, same batch).\n\n"
            f"{table(args, results)}\n")
    print(text)
    if args.write:
        path = os.path.join(REPO, "BENCHMARKS.md")
        with open(path) as f:
            doc = f.read()
        pattern = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
        doc = pattern.sub(text, doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + text
        with open(path, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
