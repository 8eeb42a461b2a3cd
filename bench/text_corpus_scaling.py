"""Peak memory and speed of a `text:DIR` corpus at 1x and 10x size (BENCHMARKS.md, "Your own
corpus at scale").

    python bench/text_corpus_scaling.py [--tokens=1000000] [--scales=1,10]
        [--code=.] [--code=OTHER_CHECKOUT ...]

Writes a synthetic corpus of `--tokens` x scale words (Zipf-distributed over 50,000 types,
5..40 words a line, a fixed seed) to a temporary folder, then for every `--code` checkout (a
repository root whose `data` package is imported, e.g. an older commit unpacked with
`git archive COMMIT data | tar -x -C DIR`) and every scale, in a fresh process: loads
`data.load("text:DIR", vocab_size=10000)` and reads one epoch of the `sentences` form in batches
of 64. It prints one row per run: load time and tokens/s, epoch tokens/s, and the peak resident
set size (ru_maxrss) after importing, after loading and after the epoch, so the rows of one
invocation compare checkouts and scales side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r"""
import json, resource, sys, time
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import data
imported = peak_mb()
start = time.perf_counter()
corpus = data.load("text:" + sys.argv[1], vocab_size=10000)
load_s = time.perf_counter() - start
loaded = peak_mb()
tokens = sum(corpus.num_tokens(s) for s in corpus.splits)
start, seen = time.perf_counter(), 0
for batch in corpus.dataset("train", "sentences", 64):
    seen += int(batch["lengths"].numpy().sum())
epoch_s = time.perf_counter() - start
print("ROW " + json.dumps({"tokens": tokens, "load_s": load_s, "load_tokens_per_s": tokens / load_s,
      "epoch_tokens": seen, "epoch_tokens_per_s": seen / epoch_s, "rss_import_mb": imported,
      "rss_loaded_mb": loaded, "rss_peak_mb": peak_mb(), "data": data.__file__}))
"""


def write_corpus(folder: str, num_tokens: int, seed: int = 0) -> int:
    """A synthetic `train.txt` of about `num_tokens` words; returns the number of words."""
    rng = np.random.default_rng(seed)
    types = np.array([f"w{i}" for i in range(50_000)])
    ranks = np.minimum(rng.zipf(1.1, num_tokens), 50_000) - 1
    lengths = rng.integers(5, 41, num_tokens // 5)
    ends = np.cumsum(lengths)
    ends = ends[ends <= num_tokens]
    words = types[ranks[:ends[-1]]]
    with open(os.path.join(folder, "train.txt"), "w", encoding="utf-8") as f:
        for line in np.split(words, ends[:-1]):
            f.write(" ".join(line) + "\n")
    return int(ends[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--code", action="append", default=None)
    args = parser.parse_args()
    codes = [os.path.abspath(c) for c in (args.code or ["."])]
    with tempfile.TemporaryDirectory() as root:
        folders = {}
        for scale in map(int, args.scales.split(",")):
            folders[scale] = os.path.join(root, f"x{scale}")
            os.mkdir(folders[scale])
            words = write_corpus(folders[scale], args.tokens * scale)
            print(f"# scale {scale}x: {words:,} words, "
                  f"{os.path.getsize(os.path.join(folders[scale], 'train.txt')) / 2**20:.1f} MiB",
                  flush=True)
        print("| code | scale | tokens | load s | load tokens/s | epoch tokens/s | RSS after "
              "import MiB | RSS after load MiB | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for code in codes:
            for scale, folder in folders.items():
                env = {**os.environ, "PYTHONPATH": code, "TF_CPP_MIN_LOG_LEVEL": "2"}
                proc = subprocess.run([sys.executable, "-c", CHILD, folder], env=env, cwd=code,
                                      capture_output=True, text=True)
                rows = [line for line in proc.stdout.splitlines() if line.startswith("ROW ")]
                if proc.returncode or not rows:
                    sys.exit(f"{code} at {scale}x failed:\n{proc.stdout}\n{proc.stderr}")
                r = json.loads(rows[0][4:])
                if not r["data"].startswith(code + os.sep):
                    sys.exit(f"{code}: imported {r['data']} instead of its own data package")
                print(f"| {os.path.basename(code)} | {scale}x | {r['tokens']:,} | "
                      f"{r['load_s']:.1f} | {r['load_tokens_per_s']:,.0f} | "
                      f"{r['epoch_tokens_per_s']:,.0f} | {r['rss_import_mb']:.0f} | "
                      f"{r['rss_loaded_mb']:.0f} | {r['rss_peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
