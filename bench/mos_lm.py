"""PTB: mixture of softmaxes (`mos_lm`) against the single-softmax `rnnlm` at equal parameters
and steps.

    python bench/mos_lm.py [--train_steps=300] [--hidden_dim=128] [--num_softmaxes=5]

`mos_lm` is trained with `--hidden_dim`; `rnnlm` gets the hidden size whose parameter count is
closest to it (counted on the built Keras models), so that any gap is the output layer's rank,
not its size. Both use the same seed, data order and steps; the printed Markdown rows give the
test perplexity on the continuous PTB stream, the parameter counts, wall time and the command.
The full-size published gap (AWD-LSTM 57.30 → AWD-LSTM-MoS 54.44 test perplexity, Yang et al.
2018) is beside them in BENCHMARKS.md, not reproduced at this scale.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PTB_VOCAB = 10002  # data.vocab: PTB's 10,000 types plus <pad>, <bos>


def count_params(model) -> int:
    import tensorflow as tf
    model.objective({"inputs": tf.zeros([1, 2], tf.int32), "targets": tf.zeros([1, 2], tf.int32),
                     "mask": tf.ones([1, 2])})
    return int(sum(w.numpy().size for w in model.trainable_weights))


def matched_rnnlm_hidden(embed_dim: int, hidden_dim: int, num_softmaxes: int) -> tuple[int, int,
                                                                                        int]:
    """(rnnlm hidden size, its parameters, mos_lm parameters) with the counts closest."""
    from tflv.models.mos_lm import MoSLM
    from tflv.models.rnnlm import RNNLM
    target = count_params(MoSLM(PTB_VOCAB, embed_dim, hidden_dim, num_softmaxes=num_softmaxes))
    best = None
    for h in range(hidden_dim, 4 * hidden_dim + 1, 8):
        n = count_params(RNNLM(PTB_VOCAB, embed_dim, h))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (h, n)
        if n > target:
            break
    return best[0], best[1], target


def train(args: list[str]) -> tuple[dict, float, list[str]]:
    command = [sys.executable, "-m", "trainers.train", *args]
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
    parser.add_argument("--embed_dim", type=int, default=128)
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--num_softmaxes", type=int, default=5)
    parser.add_argument("--model_root", default="runs/bench_mos_lm")
    args = parser.parse_args()
    rnn_hidden, rnn_params, mos_params = matched_rnnlm_hidden(args.embed_dim, args.hidden_dim,
                                                              args.num_softmaxes)
    common = ["--dataset=ptb", f"--train_steps={args.train_steps}",
              f"--batch_size={args.batch_size}", f"--embed_dim={args.embed_dim}"]
    runs = [("rnnlm", rnn_params, ["--model=rnnlm", f"--hidden_dim={rnn_hidden}"]),
            ("mos_lm", mos_params, ["--model=mos_lm", f"--hidden_dim={args.hidden_dim}",
                                    f"--num_softmaxes={args.num_softmaxes}"])]
    print("| model | parameters | steps | valid ppl | test ppl | wall s | command |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, params, extra in runs:
        result, seconds, command = train(
            [*extra, *common, f"--model_dir={args.model_root}/{name}"])
        shown = " ".join(["python -m trainers.train", *command[3:]])
        print(f"| {name} | {params:,} | {result['step']} | {result['valid_ppl']:.2f} "
              f"| {result['ppl']:.2f} | {seconds:.0f} | `{shown}` |", flush=True)


if __name__ == "__main__":
    main()
