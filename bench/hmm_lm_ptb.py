"""PTB perplexity of `hmm_lm` at K = 2^10..2^14 beside `rnnlm` and a Kneser–Ney 5-gram (issue 24).

The table of BENCHMARKS.md "HMM language model on PTB", made from finished trainer runs:

    # 1. train (each run in the background, its log beside its model dir; GNU time for peak RSS)
    /usr/bin/time -v python -m trainers.train --model=hmm_lm --dataset=ptb --num_states=1024 \\
        --num_blocks=64 --embed_dim=128 --hidden_dim=128 --state_dropout=0.5 --train_steps=6000 \\
        --learning_rate_schedule=cosine --model_dir=RUNS/hmm_k1024 > RUNS/hmm_k1024.log 2>&1
    # 2. the table (and the KN 5-gram, with KenLM's lmplz and query built from the `kenlm` sdist)
    python bench/hmm_lm_ptb.py --runs=RUNS/hmm_k1024,RUNS/hmm_k4096,RUNS/rnnlm \\
        --kenlm_bin=KENLM/build/bin [--eval_batches=4]

Per run it reads `tflv_run.json` (model, K, blocks, batch, window, schedule), the log's final
`RESULT` line (of a run stopped before its end: the `RESULT` line of `python -m
trainers.evaluate --model_dir=DIR` on its newest checkpoint, saved as DIR.ckpt_eval.log) (valid and test perplexity, steps, training seconds) and GNU time's "Maximum
resident set size" (the training process's peak RSS, final evaluation included). Training
tokens/s = steps · batch · window / training seconds (the whole run's mean, load included).
Evaluation tokens/s (with `--eval_batches=N`): a fresh process restores the run's newest
checkpoint (`trainers.run_flags.restore_run`), evaluates one test batch (tracing) and then times N
test batches of `--eval_batch_size` windows; its peak RSS is the whole process's. The
measurement is kept beside the run (DIR.eval.json) and reused.

Perplexity is exp(Σ nll / N) over every token of the split: each PTB line's words and one
`<eos>`, with `<unk>` an ordinary word (it is in the text; no OOV exists). The 5-gram counts the
same N: KenLM scores each line's words and `</s>` (its `<eos>`), not `<s>`, and `<unk>` is
renamed to a plain token before `lmplz` (which reserves `<unk>` for words outside its
vocabulary) so that it is counted and smoothed like any other word (no OOV: "OOVs: 0"). The
script checks that KenLM's token count equals tflv's. One difference remains and is stated in
the table: the 5-gram's context restarts at every sentence (`<s>`), tflv's stream models' at
every window of `--seq_len` tokens (the HMM's chain starts from π, `rnnlm` from a zero state).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("TFLV_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))
UNK_AS_WORD = "UNK_"  # `<unk>` renamed for lmplz, which reserves `<unk>`


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="", help="comma-separated trainer model dirs, each "
                        "with its log at DIR.log")
    parser.add_argument("--kenlm_bin", default="", help="folder of KenLM's lmplz and query "
                        "(empty: no 5-gram row)")
    parser.add_argument("--order", type=int, default=5, help="n-gram order of the KN model")
    parser.add_argument("--data_dir", default=DATA_DIR, help="corpora root (holds ptb/)")
    parser.add_argument("--eval_batches", type=int, default=0,
                        help="time this many test batches per run (0: no eval tokens/s)")
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--measure_eval", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------ runs
def read_run(model_dir: str) -> dict:
    """The table row of one finished trainer run (module docstring)."""
    log_path = model_dir.rstrip("/") + ".log"
    with open(os.path.join(model_dir, "tflv_run.json")) as f:
        run = json.load(f)
    with open(log_path) as f:
        log = f.read()
    results = [line for line in log.splitlines() if line.startswith("RESULT ")]
    unfinished = not results
    if unfinished:  # `python -m trainers.evaluate` of its newest checkpoint, if one was run
        partial = model_dir.rstrip("/") + ".ckpt_eval.log"
        if not os.path.exists(partial):
            raise ValueError(f"{log_path}: no RESULT line (the run did not finish) and no "
                             f"{partial}")
        with open(partial) as f:
            results = [line for line in f.read().splitlines() if line.startswith("RESULT ")]
    result = json.loads(results[-1][len("RESULT "):])
    seconds = None if unfinished else result["train_seconds"]
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    window = run["sequence"]["seq_len"]
    return {
        "name": os.path.basename(model_dir.rstrip("/")), "model": run["model"],
        "hparams": run["hparams"], "training": run["training"], "steps": result["step"],
        "batch": run["batch_size"], "window": window,
        "unfinished": unfinished, "train_seconds": seconds,
        "train_tokens_per_s": seconds and result["step"] * run["batch_size"] * window / seconds,
        "train_peak_mib": int(rss.group(1)) / 1024 if rss and not unfinished else None,
        "valid_ppl": result["valid_ppl"], "test_ppl": result["ppl"],
        "test_tokens": result["tokens"], "valid_tokens": result.get("valid_tokens")}


def measure_eval(model_dir: str, batches: int, batch_size: int, data_dir: str) -> dict:
    """Evaluation tokens/s on `batches` test batches of a restored run, and the process's peak
    RSS (run in a fresh process: `--measure_eval`)."""
    import resource

    sys.path.insert(0, REPO)
    from trainers import flags as tflv_flags
    from trainers.run import form_options
    from trainers.run_flags import restore_run

    tflv_flags.FLAGS([sys.argv[0], f"--data_dir={data_dir}", f"--eval_batch_size={batch_size}"])
    run, corpus, trainer = restore_run(model_dir)
    form = type(trainer.model).input_form
    dataset = corpus.dataset("test", form, batch_size, **form_options(form, False,
                                                                     run["sequence"]))
    trainer.evaluate(dataset, 1)  # traces
    start = time.perf_counter()
    metrics = trainer.evaluate(dataset, batches)
    seconds = time.perf_counter() - start
    return {"eval_tokens_per_s": metrics["tokens"] / seconds,
            "eval_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def eval_in_subprocess(model_dir: str, args) -> dict:
    """`measure_eval` in a fresh process; kept at DIR.eval.json and reused while it holds the
    same number of batches (a table can then be remade without re-timing)."""
    cache = model_dir.rstrip("/") + ".eval.json"
    if os.path.exists(cache):
        with open(cache) as f:
            saved = json.load(f)
        if saved.get("eval_batches") == args.eval_batches:
            return saved
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f"--measure_eval={model_dir}",
         f"--eval_batches={args.eval_batches}", f"--eval_batch_size={args.eval_batch_size}",
         f"--data_dir={args.data_dir}"], cwd=REPO, capture_output=True, text=True, check=True)
    measured = {**json.loads(out.stdout.strip().splitlines()[-1]),
                "eval_batches": args.eval_batches}
    with open(cache, "w") as f:
        json.dump(measured, f)
    return measured


# ---------------------------------------------------------------------------- Kneser–Ney
def tflv_token_count(path: str) -> int:
    """Tokens of a PTB file as `data/ptb.py`'s stream counts them: words + one `<eos>` a line."""
    with open(path) as f:
        return sum(len(line.split()) + 1 for line in f)


def kneser_ney(kenlm_bin: str, data_dir: str, order: int) -> dict:
    """Modified Kneser–Ney `order`-gram (KenLM `lmplz`, default discounts) on PTB train, its
    valid and test perplexity (`query`), and the token counts checked against tflv's."""
    result = {"name": f"kn{order}", "model": f"KenLM lmplz -o {order} (modified Kneser–Ney)"}
    with tempfile.TemporaryDirectory() as tmp:
        for split in ("train", "valid", "test"):
            with open(os.path.join(data_dir, "ptb", f"ptb.{split}.txt")) as f, \
                    open(os.path.join(tmp, split), "w") as g:
                g.write(f.read().replace("<unk>", UNK_AS_WORD))
        start = time.perf_counter()
        with open(os.path.join(tmp, "train")) as f, open(os.path.join(tmp, "lm.arpa"), "w") as g:
            subprocess.run([os.path.join(kenlm_bin, "lmplz"), "-o", str(order), "-S", "1G",
                            "-T", tmp], stdin=f, stdout=g, stderr=subprocess.DEVNULL,
                           check=True)
        result["train_seconds"] = time.perf_counter() - start
        for split, key in (("valid", "valid_"), ("test", "test_")):
            with open(os.path.join(tmp, split)) as f:
                out = subprocess.run([os.path.join(kenlm_bin, "query"), "-v", "summary",
                                      os.path.join(tmp, "lm.arpa")], stdin=f,
                                     capture_output=True, text=True, check=True).stdout
            ppl = float(re.search(r"Perplexity including OOVs:\s*([\d.]+)", out).group(1))
            tokens = int(re.search(r"^Tokens:\s*(\d+)", out, re.M).group(1))
            oovs = int(re.search(r"^OOVs:\s*(\d+)", out, re.M).group(1))
            expected = tflv_token_count(os.path.join(data_dir, "ptb", f"ptb.{split}.txt"))
            if tokens != expected or oovs:
                raise ValueError(f"KenLM scored {tokens} tokens ({oovs} OOV) of ptb.{split}.txt, "
                                 f"tflv's stream has {expected}")
            result[key + "ppl"], result[key + "tokens"] = ppl, tokens
    return result


# ---------------------------------------------------------------------------------- table
def describe(row: dict) -> str:
    h = row["hparams"]
    if row["model"] == "hmm_lm":
        k = h["num_states"]
        return (f"hmm_lm K = 2^{int(math.log2(k))} = {k}, M = {h['num_blocks']} "
                f"blocks by {h.get('word_assignment', 'frequency')} (S = {k // h['num_blocks']}), "
                f"D = {h['embed_dim']}, state dropout {h['state_dropout']}")
    return (f"{row['model']} embed {h.get('embed_dim')}, hidden {h.get('hidden_dim')}, "
            f"dropout {h.get('dropout')}")


def fmt(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


def table(rows: list[dict], kn: dict | None) -> str:
    lines = ["| model | budget: steps × (batch × window) = tokens (epochs) | train wall | "
             "train tokens/s | train peak MiB | eval tokens/s | eval peak MiB | valid ppl | "
             "test ppl |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        tokens = r["steps"] * r["batch"] * r["window"]
        budget = (f"{r['steps']} × ({r['batch']} × {r['window']}) = {tokens / 1e6:.2f} M "
                  f"({tokens / 929_589:.1f}), lr {r['training'].get('learning_rate')}")
        if r["unfinished"]:
            budget += (f", unfinished: checkpoint of step {r['steps']} of "
                       f"{r['training']['train_steps']}")
        wall = f"{r['train_seconds'] / 60:.1f} min" if r["train_seconds"] else "–"
        lines.append(
            f"| {describe(r)} | {budget} | {wall} | "
            f"{fmt(r['train_tokens_per_s'])} | {fmt(r['train_peak_mib'])} | "
            f"{fmt(r.get('eval_tokens_per_s'))} | {fmt(r.get('eval_peak_mib'))} | "
            f"{fmt(r['valid_ppl'], 1)} | {fmt(r['test_ppl'], 1)} |")
    if kn:
        lines.append(f"| {kn['model']}, sentence context | counts of train (1 pass) | "
                     f"{kn['train_seconds'] / 60:.1f} min | – | – | – | – | "
                     f"{kn['valid_ppl']:.1f} | {kn['test_ppl']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.measure_eval:
        print(json.dumps(measure_eval(args.measure_eval, args.eval_batches,
                                      args.eval_batch_size, args.data_dir)))
        return
    rows = []
    for model_dir in filter(None, args.runs.split(",")):
        row = read_run(model_dir)
        if args.eval_batches:
            row.update(eval_in_subprocess(model_dir, args))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    kn = kneser_ney(args.kenlm_bin, args.data_dir, args.order) if args.kenlm_bin else None
    full = {split: tflv_token_count(os.path.join(args.data_dir, "ptb", f"ptb.{split}.txt"))
            for split in ("valid", "test")}
    for row in rows:  # a run evaluated on part of a split (--max_eval_batches) has no ppl here
        for split, key in (("valid", "valid_"), ("test", "test_")):
            if row[key + "tokens"] != full[split]:
                row[key + "ppl"] = None
    print(table(rows, kn))


if __name__ == "__main__":
    main()
