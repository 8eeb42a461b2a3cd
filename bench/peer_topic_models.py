"""An independent NVDM and GSM (PyTorch) on our 20news files: issue #6's comparison of GSM
with NVDM, run with another implementation's models (YongfeiYan/Neural-Document-Modeling,
tested at 7639724: its `models/` package, with the architectures of its nvdm.yaml and gsm.yaml).

    python bench/peer_topic_models.py --peer_dir=PEER [--data_dir=DIR] [--budget_s=460]
        [--runs=nvdm@20news,gsm@20news,...] [--learning_rate=1e-3] [--out_dir=DIR]

Every run is its own process, and all start at once (on one GPU when there is one). Each trains
the peer's model on batches of 64 documents drawn with replacement from 90% of the training
documents (the peer's 10% dev split) with Adam at `--learning_rate`: 1,200 steps at the full rate,
of which the last 1,000 are timed while all runs share the machine, then a cosine decay to 0
over as many steps as fit 85% of what is left of `--budget_s`. Printed: per-document perplexity
exp(mean_d −ELBO_d / N_d) (one draw per document, dropout off) on dev and test at ten points and
the end, and the test perplexity at the best dev point.

Models: `nvdm` (one tanh layer of 500 units, a 50-dim Gaussian, a log-linear decoder);
`gsm`, the peer's GSM: a softplus MLP 50-50 with dropout 0.2, θ = softmax(W z) with dropout 0.2,
log p(w | θ) = log_softmax(θ T Eᵀ) (log-linear in θ: a document model in the sense of Miao et
al. 2017), and its topic-diversity penalty (weight 50); `gsm_mixture`, the same GSM with the
topic model's decoder p(w | θ) = Σ_k θ_k softmax(t_k Eᵀ)_w and no dropout on θ (a rescaled θ
leaves the simplex).

This harness runs without TensorFlow (the GPU machines here have PyTorch only), so it reads the
`.feat` files itself rather than through `data.readers`, and finds the data root by the rule of
`data.paths.resolve_data_dir` (`--data_dir`, `$TFLV_DATA_DIR`, `../shared/data`) written out
again: the `data` package imports TensorFlow.

#### References
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing. ICML.
- Miao, Grefenstette & Blunsom (2017). Discovering Discrete Latent Topics with Neural Variational
  Inference. ICML.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = ("nvdm@20news", "gsm@20news", "gsm_mixture@20news",
        "nvdm@20news_prodlda", "gsm@20news_prodlda", "gsm_mixture@20news_prodlda")
WARMUP_STEPS, TIMED_STEPS, BATCH = 200, 1000, 64


def read_counts(path: str, vocab_size: int) -> np.ndarray:
    """float32 [D, V]: the non-empty documents of an NVDM `.feat` file (1-based word ids)."""
    rows = []
    with open(path) as f:
        for line in f:
            x = np.zeros(vocab_size, np.float32)
            for pair in line.split()[1:]:
                word, count = pair.split(":")
                x[int(word) - 1] += float(count)
            if x.sum() > 0:
                rows.append(x)
    return np.stack(rows)


def build(model_name: str, vocab_size: int):
    """The peer's model: `nvdm`, `gsm` or `gsm_mixture` (module docstring)."""
    from torch import nn
    from models.NTM import GSM, NTM
    from models.utils import EmbTopic, Identity, NormalParameter, Topics, get_mlp

    class MixtureTopic(EmbTopic):
        """log Σ_k θ_k β_kw with β_k = softmax(t_k Eᵀ): GSM's topic-model decoder."""

        def forward(self, theta):
            beta = nn.functional.softmax(self.topic_emb @ self.embedding.weight.t(), dim=-1)
            return (theta @ beta + 1e-10).log()

    if model_name == "nvdm":
        return NTM(get_mlp([vocab_size, 500], "Tanh"), NormalParameter(500, 50), Identity(),
                   Topics(50, vocab_size))
    if model_name not in ("gsm", "gsm_mixture"):
        raise ValueError(f"unknown model {model_name!r}; valid: nvdm, gsm, gsm_mixture")
    mixture = model_name == "gsm_mixture"
    h_to_z = [nn.Linear(50, 50), nn.Softmax(dim=-1)] + ([] if mixture else [nn.Dropout(0.2)])
    topics = (MixtureTopic if mixture else EmbTopic)(nn.Embedding(vocab_size, 50), 50)
    return GSM(nn.Sequential(get_mlp([vocab_size, 50, 50], "Softplus"), nn.Dropout(0.2)),
               NormalParameter(50, 50), nn.Sequential(*h_to_z), topics, penalty=50)


def run_one(args, name: str) -> dict:
    """Trains and evaluates one `model@corpus` run (module docstring); returns its result."""
    import torch
    start = time.time()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_name, corpus = name.split("@")
    folder = os.path.join(args.data_dir, corpus)
    with open(os.path.join(folder, "vocab.new")) as f:
        vocab_size = sum(1 for _ in f)
    train, test = (torch.tensor(read_counts(os.path.join(folder, f"{split}.feat"), vocab_size),
                                device=device) for split in ("train", "test"))
    perm = torch.randperm(len(train), device=device)
    num_dev = int(0.1 * len(train))
    dev, train = train[perm[:num_dev]], train[perm[num_dev:]]
    model = build(model_name, vocab_size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)

    def perplexity(docs):
        model.eval()
        with torch.no_grad():
            total = sum((model(x)["minus_elbo"] / x.sum(-1)).sum().item()
                        for x in docs.split(500))
        model.train()
        return math.exp(min(total / len(docs), 700.0))  # a diverged run reads e^700, not a crash

    def step():
        loss = model(train[torch.randint(len(train), (BATCH,), device=device)])["loss"].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(WARMUP_STEPS):
        step()
    synchronize()
    timed = time.time()
    for _ in range(TIMED_STEPS):
        step()
    synchronize()
    per_step = (time.time() - timed) / TIMED_STEPS
    total = max(2000, int(0.85 * (args.budget_s - (time.time() - start)) / per_step))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    curve = []
    for s in range(1, total + 1):
        step()
        schedule.step()
        if s % (total // 10) == 0 or s == total:
            curve.append({"step": WARMUP_STEPS + TIMED_STEPS + s, "dev": perplexity(dev),
                          "test": perplexity(test), "wall_s": time.time() - start})
            print(json.dumps({"run": name, **curve[-1]}), flush=True)
    best = min(curve, key=lambda p: p["dev"])
    return {"run": name, "device": device.type, "ms_per_step": 1e3 * per_step,
            "steps": curve[-1]["step"], "test": curve[-1]["test"], "best_dev_step": best["step"],
            "test_at_best_dev": best["test"], "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer_dir", required=True,
                        help="a checkout of YongfeiYan/Neural-Document-Modeling")
    parser.add_argument("--data_dir", default=os.environ.get("TFLV_DATA_DIR") or os.path.join(
        REPO, os.pardir, "shared", "data"))
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--budget_s", type=float, default=460.0)
    parser.add_argument("--out_dir", default="runs/bench_peer_topic_models")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # one run, in a child process
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.peer_dir, "models", "NTM.py")):
        raise SystemExit(f"--peer_dir={args.peer_dir}: no models/NTM.py; expected a checkout of "
                         "https://github.com/YongfeiYan/Neural-Document-Modeling")
    sys.path.insert(0, os.path.abspath(args.peer_dir))
    if args.run:
        result = run_one(args, args.run)
        print("RESULT " + json.dumps(result), flush=True)
        return
    os.makedirs(args.out_dir, exist_ok=True)
    children = {}
    for name in args.runs.split(","):
        log = open(os.path.join(args.out_dir, name.replace("@", "_") + ".log"), "w")
        children[name] = (subprocess.Popen([sys.executable, __file__, *sys.argv[1:],
                                            f"--run={name}"], stdout=log, stderr=log), log)
    print("| peer model | corpus | device | ms/step | steps | test ppl | best dev step "
          "| test ppl there |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (child, log) in children.items():
        child.wait()
        log.close()
        with open(log.name) as f:
            lines = [l for l in f if l.startswith("RESULT ")]
        if child.returncode or not lines:
            print(f"| {name} failed (exit {child.returncode}): see {log.name} |")
            continue
        r = json.loads(lines[-1][len("RESULT "):])
        model_name, corpus = name.split("@")
        print(f"| {model_name} | {corpus} | {r['device']} | {r['ms_per_step']:.2f} "
              f"| {r['steps']:,} | {r['test']:.1f} | {r['best_dev_step']:,} "
              f"| {r['test_at_best_dev']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
