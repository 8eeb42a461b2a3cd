"""Training throughput and peak memory: tflv beside a PyTorch reference of the same model.

    python bench/throughput.py [--models=rnnlm,sentence_vae,hmm] [--runners=tflv,tflv+xla,torch]
        [--steps=30] [--warmup=5] [--repeats=3] [--batch_size=32] [--seq_len=35]
        [--embed_dim=256] [--hidden_dim=256] [--latent_dim=32] [--num_states=128] [--data_dir=DIR]

For each model and the same PTB batches (drawn once here and handed to every runner as arrays),
the runners train with forward + backward + Adam (global-norm clipping 5, as `trainers.train`):

* `tflv`: the real train step, `trainers.loop.Trainer` under the default strategy, as a plain
  graph (`jit_compile="false"`: its `tf.function` step, `strategy.run`, Keras Adam), one
  `float(loss)` per step as `Trainer.train`.
* `tflv+xla`: the same trainer with XLA (`jit_compile="true"`: each replica's step and update
  compiled, what the trainer's default `auto` runs for fixed batch shapes), or the compile error.
* `tflv+bf16`, `tflv+xla+bf16` (with `--runners`): the same two under
  `mixed_precision="bfloat16"` (Keras' `mixed_bfloat16` policy; `--mixed_precision=bfloat16`).
* `torch`: a PyTorch implementation written here with the same architecture, sizes and
  trainable-parameter count (asserted): `nn.Embedding` + `nn.LSTM` + `nn.Linear` for `rnnlm`; LSTM
  encoder → diagonal Gaussian → LSTM decoder fed [e(w); z] for `sentence_vae`; logits parameters
  and the scaled forward algorithm for `hmm`. `torch.optim.Adam` (eps = Keras' 1e-7) and
  `clip_grad_norm_`, one `loss.item()` per step. Keras' LSTM has one bias per gate where
  `nn.LSTM` has two (`bias_ih`, `bias_hh`); the reference freezes `bias_hh` at zero so the
  trainable parameters (and the function) are the same.

Each runner is its own process (so its peak RSS, VmHWM, is its own; see `peak_rss_mb`); all three are started
and warmed up (tracing, XLA compilation) one after the other, then the timed blocks of `--steps`
steps are interleaved, A B C, B C A, C A B, … for `--repeats` rounds, so that the load of a shared
machine falls on every runner alike. Tokens/s counts real (unmasked) tokens, the trainer's
`tokens` statistic; the reported figure is the median over the blocks. Both frameworks get the
same threads (TF inter/intra-op 2, torch intra/inter-op 2, `--threads`).

Sequence lengths are static (stream windows of `--seq_len`; sentences of at most `--seq_len` − 1
words padded to `--seq_len`), the same padded work for every runner.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODELS = ("rnnlm", "sentence_vae", "hmm")
RUNNERS = ("tflv", "tflv+xla", "torch", "tflv+bf16", "tflv+xla+bf16")
LEARNING_RATE, CLIP_NORM = 2e-3, 5.0  # trainers/flags.py defaults
TAG = "@@"  # protocol lines on a runner's stdout start with this


# --------------------------------------------------------------------------------------------
# Batches: drawn once by the parent, saved as arrays, read by every runner.

def make_batches(model: str, args, path: str) -> dict:
    import numpy as np
    import data
    corpus = data.load("ptb", args.data_dir)
    if model == "rnnlm":
        ds = corpus.dataset("train", "stream", args.batch_size, seq_len=args.seq_len)
    elif model == "sentence_vae":
        ds = corpus.dataset("train", "sentences", args.batch_size, shuffle=True, seed=0,
                            max_length=args.seq_len - 1, pad_to=args.seq_len)
    else:
        ds = corpus.dataset("train", "tokens", args.batch_size, shuffle=True, seed=0,
                            max_length=args.seq_len, pad_to=args.seq_len)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds.take(args.num_batches)]
    arrays = {f"{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()}
    np.savez(path, **arrays)
    return {"vocab_size": corpus.info["vocab_size"],
            "tokens_per_batch": float(np.mean([b["mask"].sum() for b in batches])),
            "shape": list(batches[0]["mask"].shape)}


def load_batches(path: str) -> list[dict]:
    import numpy as np
    with np.load(path) as f:
        out: dict[int, dict] = {}
        for key in f.files:
            i, name = key.split("/")
            out.setdefault(int(i), {})[name] = f[key]
    return [out[i] for i in sorted(out)]


# --------------------------------------------------------------------------------------------
# tflv runner.

def tflv_runner(model: str, cfg: dict, batches: list[dict], jit: bool, bf16: bool):
    import tensorflow as tf
    tf.config.threading.set_inter_op_parallelism_threads(cfg["threads"])
    tf.config.threading.set_intra_op_parallelism_threads(cfg["threads"])
    import keras
    keras.utils.set_random_seed(0)
    from trainers.loop import Trainer

    v, e, h = cfg["vocab_size"], cfg["embed_dim"], cfg["hidden_dim"]

    def build():
        if model == "rnnlm":
            from tflv.models.rnnlm import RNNLM
            return RNNLM(v, embed_dim=e, hidden_dim=h, num_layers=cfg["num_layers"])
        if model == "sentence_vae":
            from tflv.models.sentence_vae import SentenceVAE
            return SentenceVAE(v, embed_dim=e, hidden_dim=h, num_layers=cfg["num_layers"],
                               latent_dim=cfg["latent_dim"])
        from tflv.layers.hmm_parameterizations import HMMLogits
        from tflv.models.hmm_taggers import HMMTagger
        return HMMTagger(HMMLogits(cfg["num_states"], v, name="logits"))

    trainer = Trainer(build, tf.distribute.get_strategy(), global_batch_size=cfg["batch_size"],
                      learning_rate=LEARNING_RATE, clip_norm=CLIP_NORM,
                      mixed_precision="bfloat16" if bf16 else "float32",
                      jit_compile="true" if jit else "false")
    tf_batches = [{k: tf.constant(x) for k, x in b.items()} for b in batches]
    trainer.build(tf_batches[0])
    params = int(sum(w.numpy().size for w in trainer.model.trainable_weights))

    def step(i):
        loss, tokens = trainer._train_step(tf_batches[i % len(tf_batches)])
        return float(loss)  # the host sync Trainer.train makes every step

    return params, step


# --------------------------------------------------------------------------------------------
# PyTorch reference runner.

def torch_runner(model: str, cfg: dict, batches: list[dict]):
    import torch
    from torch import nn
    import torch.nn.functional as F
    torch.set_num_threads(cfg["threads"])
    torch.set_num_interop_threads(cfg["threads"])
    torch.manual_seed(0)
    v, e, h = cfg["vocab_size"], cfg["embed_dim"], cfg["hidden_dim"]

    def keras_like_lstm(input_size, hidden, layers=1):
        # One bias per gate as in Keras: bias_hh frozen at zero (same function, same count).
        lstm = nn.LSTM(input_size, hidden, num_layers=layers, batch_first=True)
        for name, p in lstm.named_parameters():
            if name.startswith("bias_hh"):
                with torch.no_grad():
                    p.zero_()
                p.requires_grad_(False)
        return lstm

    def token_nll(logits, targets, mask):  # [B,T,V], [B,T], [B,T] -> [B,T]
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                              reduction="none").view_as(mask)
        return nll * mask

    class RNNLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(v, e)
            self.lstm = keras_like_lstm(e, h, cfg["num_layers"])
            self.projection = nn.Linear(h, v)

        def forward(self, b):
            out, _ = self.lstm(self.embedding(b["inputs"]))
            nll = token_nll(self.projection(out), b["targets"], b["mask"]).sum(1)
            return (nll / b["mask"].sum(1).clamp_min(1.0)).mean()

    class SentenceVAE(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg["latent_dim"]
            self.enc_embedding = nn.Embedding(v, e)
            self.enc_lstm = keras_like_lstm(e, h)
            self.head = nn.Linear(h, 2 * d)
            self.dec_embedding = nn.Embedding(v, e)
            self.dec_lstm = keras_like_lstm(e + d, h, cfg["num_layers"])
            self.projection = nn.Linear(h, v)

        def forward(self, b):
            mask = b["mask"]
            states, _ = self.enc_lstm(self.enc_embedding(b["targets"]))  # [B, T, H]
            last = (mask.sum(1).long() - 1).clamp_min(0)  # final real position (prefix mask)
            features = states[torch.arange(states.shape[0]), last]  # [B, H]
            loc, pre_scale = self.head(features).chunk(2, dim=-1)
            scale = F.softplus(pre_scale) + 1e-4
            z = loc + scale * torch.randn_like(loc)  # one reparameterized sample
            kl = 0.5 * (scale ** 2 + loc ** 2 - 1.0 - 2.0 * torch.log(scale)).sum(-1)
            x = self.dec_embedding(b["inputs"])
            x = torch.cat([x, z[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
            out, _ = self.dec_lstm(x)
            nll = token_nll(self.projection(out), b["targets"], mask).sum(1)
            return (nll + kl).mean()  # -ELBO per sentence, averaged over the batch

    class HMM(nn.Module):
        def __init__(self):
            super().__init__()
            k = cfg["num_states"]
            self.initial = nn.Parameter(torch.randn(k))
            self.transition = nn.Parameter(torch.randn(k, k))
            self.emission = nn.Parameter(torch.randn(k, v))

        def forward(self, b):
            # Scaled forward algorithm (Rabiner 1989), time-major, masked prefix rows.
            mask = b["mask"].t() > 0  # [T, B]
            tokens = torch.where(mask, b["tokens"].t(), torch.zeros_like(b["tokens"].t()))
            log_pi = F.log_softmax(self.initial, -1)
            log_a = F.log_softmax(self.transition, -1)
            log_e = F.log_softmax(self.emission, -1)
            em = log_e[:, tokens].permute(1, 2, 0)  # [T, B, K]
            em = torch.where(mask[..., None], em, torch.zeros_like(em))
            shift = em.amax(-1).detach()  # [T, B]
            em = torch.exp(em - shift[..., None])
            a_shift = log_a.max().detach()
            a = torch.exp(log_a - a_shift)
            i_shift = log_pi.max().detach()
            alpha = torch.exp(log_pi - i_shift) * em[0]
            total = alpha.sum(-1, keepdim=True)
            alpha = alpha / total
            log_z = torch.where(mask[0], total[:, 0].log() + i_shift + shift[0],
                                torch.zeros_like(shift[0]))
            for t in range(1, em.shape[0]):
                new = (alpha @ a) * em[t]
                total = new.sum(-1, keepdim=True)
                alpha = torch.where(mask[t, :, None], new / total, alpha)
                log_z = torch.where(mask[t], log_z + total[:, 0].log() + shift[t] + a_shift,
                                    log_z)
            tokens_per_row = b["mask"].sum(1).clamp_min(1.0)
            return (-log_z / tokens_per_row).mean()

    net = {"rnnlm": RNNLM, "sentence_vae": SentenceVAE, "hmm": HMM}[model]()
    trainable = [p for p in net.parameters() if p.requires_grad]
    params = int(sum(p.numel() for p in trainable))
    optimizer = torch.optim.Adam(trainable, lr=LEARNING_RATE, eps=1e-7)
    t_batches = [{k: torch.from_numpy(x).long() if x.dtype.kind in "iu" else torch.from_numpy(x)
                  for k, x in b.items()} for b in batches]

    def step(i):
        loss = net(t_batches[i % len(t_batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(trainable, CLIP_NORM)
        optimizer.step()
        return loss.item()

    return params, step


# --------------------------------------------------------------------------------------------
# A runner process: setup and warm-up, then one timed block per "run" line on stdin.

def say(**message) -> None:
    sys.stdout.write(TAG + json.dumps(message) + "\n")
    sys.stdout.flush()


def runner_main(runner: str, model: str, cfg: dict, batch_path: str) -> None:
    batches = load_batches(batch_path)
    tokens = [float(b["mask"].sum()) for b in batches]
    start = time.perf_counter()
    try:
        if runner == "torch":
            params, step = torch_runner(model, cfg, batches)
        else:
            params, step = tflv_runner(model, cfg, batches, jit="xla" in runner,
                                       bf16="bf16" in runner)
        i = 0
        for _ in range(cfg["warmup"]):
            loss = step(i)
            i += 1
    except Exception as error:  # reported (e.g. an XLA compile error), not fatal to the bench
        say(error=f"{type(error).__name__}: {error}"[:2000], trace=traceback.format_exc()[-4000:])
        return
    say(ready=True, params=params, warmup_s=time.perf_counter() - start, loss=loss)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        n_tokens, n_steps, t0 = 0.0, 0, time.perf_counter()
        while n_steps < cfg["steps"] or time.perf_counter() - t0 < cfg["min_block_s"]:
            loss = step(i)
            n_tokens += tokens[i % len(batches)]
            i, n_steps = i + 1, n_steps + 1
        seconds = time.perf_counter() - t0
        say(tokens_per_s=n_tokens / seconds, seconds=seconds, steps=n_steps, loss=loss)
    say(max_rss_mb=peak_rss_mb(), ru_maxrss_mb=resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def peak_rss_mb() -> float:
    """This process' peak RSS: VmHWM, the high-water mark of its own address space.

    `ru_maxrss` is not used for the table: Linux carries the parent's high-water mark across
    fork + exec into the child's `ru_maxrss`, so a child of a large parent reports at least the
    parent's size. (It is reported beside, as `ru_maxrss_mb`, where it is larger than VmHWM.)
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Runner:
    """The parent's handle on one runner process."""

    def __init__(self, runner: str, model: str, cfg: dict, batch_path: str, log_dir: str):
        self.name = runner
        self.log_path = os.path.join(log_dir, f"{model}-{runner.replace('+', '_')}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), f"--runner={runner}", f"--model={model}",
             f"--config={json.dumps(cfg)}", f"--batch_path={batch_path}"],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self.ready = self._read()
        self.error = self.ready.get("error")
        self.rates: list[float] = []
        self.max_rss_mb = None

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(TAG):
                return json.loads(line[len(TAG):])
        self.proc.wait()
        self.log.flush()
        with open(self.log_path) as f:
            tail = f.read()[-2000:]
        return {"error": f"runner exited with {self.proc.returncode}: {tail}"}

    def run_block(self) -> dict:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        result = self._read()
        self.rates.append(result["tokens_per_s"])
        return result

    def finish(self) -> None:
        if not self.error and self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            if not self.error:
                self.max_rss_mb = self._read().get("max_rss_mb")
            self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------------------------

def measure(model: str, args, work_dir: str, runner_names) -> dict:
    batch_path = os.path.join(work_dir, f"{model}.npz")
    # Drawn in a child process, so that this one stays small (no TensorFlow here).
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:],
                           f"--prepare={model}", f"--batch_path={batch_path}"], cwd=REPO,
                          capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    tagged = [l for l in proc.stdout.splitlines() if l.startswith(TAG)]
    if proc.returncode or not tagged:
        raise RuntimeError(f"drawing the {model} batches failed:\n{proc.stderr[-3000:]}")
    info = json.loads(tagged[-1][len(TAG):])
    cfg = dict(vocab_size=info["vocab_size"], embed_dim=args.embed_dim,
               hidden_dim=args.hidden_dim, num_layers=args.num_layers,
               latent_dim=args.latent_dim, num_states=args.num_states,
               batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
               min_block_s=args.min_block_s, threads=args.threads)
    runners = []
    for name in runner_names:  # set up one at a time: warm-up and compilation don't overlap
        r = Runner(name, model, cfg, batch_path, work_dir)
        status = r.error or f"ready: {r.ready['params']:,} parameters, warm-up " \
                            f"{r.ready['warmup_s']:.1f}s"
        print(f"[{model}] {name}: {status}", flush=True)
        runners.append(r)
    live = [r for r in runners if not r.error]
    params = {r.name: r.ready["params"] for r in live}
    print(f"[{model}] trainable parameters: {params}", flush=True)
    try:
        assert len(set(params.values())) <= 1, f"parameter counts differ: {params}"
        for k in range(args.repeats):
            order = live[k % len(live):] + live[:k % len(live)]  # ABC, BCA, CAB, ...
            for r in order:
                result = r.run_block()
                print(f"[{model}] round {k + 1} {r.name}: {result['tokens_per_s']:,.0f} tokens/s "
                      f"({result['steps']} steps, {result['seconds']:.2f}s, "
                      f"loss {result['loss']:.3f})", flush=True)
    finally:
        for r in runners:
            r.finish()
    rows = {}
    for r in runners:
        rows[r.name] = {"error": r.error} if r.error else {
            "tokens_per_s": statistics.median(r.rates), "rates": r.rates,
            "max_rss_mb": r.max_rss_mb, "params": r.ready["params"],
            "warmup_s": r.ready["warmup_s"]}
    return {"model": model, "shape": info["shape"], "tokens_per_batch": info["tokens_per_batch"],
            "config": cfg, "runners": rows}


def sizes(model: str, cfg: dict) -> str:
    if model == "hmm":
        return f"K={cfg['num_states']}, V={cfg['vocab_size']}"
    text = f"E={cfg['embed_dim']}, H={cfg['hidden_dim']}, V={cfg['vocab_size']}"
    return text + (f", D={cfg['latent_dim']}" if model == "sentence_vae" else "")


def table(results: list[dict]) -> str:
    """One row per model: each runner's tokens/s, each tflv runner / torch (when torch ran),
    each bfloat16 runner / its float32 twin (when both ran), and the peak RSS of every runner."""
    names = [n for n in RUNNERS if any(n in res["runners"] for res in results)]
    ratios = [(n, "torch") for n in names if n != "torch" and "torch" in names]
    ratios += [(n, n.replace("+bf16", "")) for n in names
               if n.endswith("+bf16") and n.replace("+bf16", "") in names]
    head = ["model", "sizes", "batch × T (real tokens/batch)", "parameters",
            *[f"{n} tok/s" for n in names], *[f"{a} / {b}" for a, b in ratios],
            f"peak RSS {' / '.join(names)} (MB)"]
    lines = ["| " + " | ".join(head) + " |",
             "| --- | --- | --- | ---: | " + "---: | " * (len(names) + len(ratios)) + "--- |"]
    for res in results:
        rows = res["runners"]
        rate = lambda n: rows.get(n, {}).get("tokens_per_s")
        fmt = lambda n: f"{rate(n):,.0f}" if rate(n) else "error"
        ratio = lambda a, b: f"{rate(a) / rate(b):.2f}" if rate(a) and rate(b) else "–"
        rss = " / ".join(f"{rows[n]['max_rss_mb']:,.0f}" if rows.get(n, {}).get("max_rss_mb")
                         else "–" for n in names)
        params = next((r["params"] for r in rows.values() if "params" in r), 0)
        b, t = res["shape"]
        cells = [res["model"], sizes(res["model"], res["config"]),
                 f"{b} × {t} ({res['tokens_per_batch']:.0f})", f"{params:,}",
                 *[fmt(n) for n in names], *[ratio(a, b) for a, b in ratios], rss]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runners", default="tflv,tflv+xla,torch",
                        help=f"comma-separated, of {', '.join(RUNNERS)}")
    parser.add_argument("--steps", type=int, default=30, help="steps per timed block")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (tracing/compile)")
    parser.add_argument("--min_block_s", type=float, default=3.0,
                        help="a timed block also lasts at least this long (fast models)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of blocks")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=35)
    parser.add_argument("--num_batches", type=int, default=20, help="distinct batches, cycled")
    parser.add_argument("--embed_dim", type=int, default=256)
    parser.add_argument("--hidden_dim", type=int, default=256)
    parser.add_argument("--num_layers", type=int, default=1)
    parser.add_argument("--latent_dim", type=int, default=32)
    parser.add_argument("--num_states", type=int, default=128, help="HMM states K")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    # Runner mode (internal).
    parser.add_argument("--runner", choices=RUNNERS, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--batch_path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        say(**make_batches(args.prepare, args, args.batch_path))
        return
    if args.runner:
        runner_main(args.runner, args.model, json.loads(args.config), args.batch_path)
        return

    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; valid: {', '.join(MODELS)}")
    runner_names = [r for r in args.runners.split(",") if r]
    if set(runner_names) - set(RUNNERS):
        parser.error(f"unknown runners {sorted(set(runner_names) - set(RUNNERS))}; valid: "
                     f"{', '.join(RUNNERS)}")
    print("command: python bench/throughput.py " + " ".join(sys.argv[1:]), flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tflv_throughput_") as work_dir:
        results = []
        for model in models:
            results.append(measure(model, args, work_dir, runner_names))
            for name, row in results[-1]["runners"].items():
                if "error" in row:
                    print(f"[{model}] {name} failed: {row['error']}", flush=True)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f}s\n")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
