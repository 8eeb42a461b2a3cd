"""HMM forward algorithm: tflv beside TFP, torch-struct, Pyro and bare loops, in one run.

    python bench/hmm_forward.py [--rows=0,1,2] [--reps=5] [--write]

For each workload (B, T, K, V) — random logits and tokens, seeded — every implementation
computes (a) log p(x) summed over the batch and its gradient w.r.t. all parameters (initial,
transition, emission logits) and (b) posterior marginals:

* `tflv`: `tflv.distributions.HMM(...).log_prob(x[, mask])` + `tf.GradientTape`, inside
  `tf.function`, and the same with `jit_compile=True` (XLA); masked rows use random lengths in
  [T/2, T]. Marginals: `posterior(x).unary` [B, T, K] and `posterior_marginals(x)`
  (+ pairwise [B, T-1, K, K]).
* `tfp`: `tfd.HiddenMarkovModel` with `Categorical` parts (`tf.function`); marginals:
  `posterior_marginals(x).probs_parameter()` (unary).
* `torch-struct`: `torch_struct.HMM(transition^T, emission^T, init, x)`: `.partition`,
  `.marginals` (pairwise).
* `pyro`: `pyro.distributions.DiscreteHMM(init, transition, Categorical(emission))`; it applies a
  transition before the first emission, so it is timed on its own convention (checked against
  tflv with initial log-probs log(π A)); it has no posterior marginals.
* bare loops, the reference speed: a scaled-forward `tf.scan` loop (normalise once, one matmul
  per step) in TF graph mode and under XLA (with its gradient, and log p alone), a log-space
  (logsumexp) `tf.scan` loop, and the scaled loop in PyTorch.

`--tflv_only` times tflv and the bare TF loops alone (no TFP, PyTorch or Pyro): a quick check
while working on tflv; the report then says the peers were not run.

Timing: every implementation is called once (the first-call time includes tracing and XLA
compilation), then the timed calls are interleaved, one call of each implementation per
round, so that the load of a shared machine falls on all alike; medians of `--reps` rounds
(implementations slower than `--slow_s` per call get `--slow_reps`). Peers whose estimated
memory exceeds `--memory_fraction` of the available memory are skipped and the estimate is
reported. The forward recursion's speed is compared with the machine's matmul peak, measured
here with a numpy float32 GEMM (n = 2048): the forward recursion does 2·B·K²·(T-1) flops, and
log p + gradient three times as many (one matmul forward, two backward).

Memory (row (8, 1000, 16, 1000)): "log p", "log p + grad" and "log p + grad" with TF's autodiff
through the forward loop instead of the hand-written backward pass (tflv, XLA) are each
compiled in a child process (`--memory_child`) that dumps XLA's buffer assignment
(`--xla_dump_to`); the table gives its total (parameters, outputs, temporaries: the program's
memory, fixed before it runs) and the temporaries alone. A process's peak RSS does not
measure this: TF's start-up dominates it.

Threads: TF and torch use their defaults (all cores). The rows go to the `## HMM forward
algorithm` section of BENCHMARKS.md with `--write`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKLOADS = [(32, 50, 64, 10000), (32, 200, 256, 10000), (8, 1000, 16, 1000)]
SECTION = "## HMM forward algorithm"
PEERS = ("tfp", "torch-struct", "pyro")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="0,1,2", help="indices into the workloads")
    parser.add_argument("--reps", type=int, default=5, help="timed rounds per implementation")
    parser.add_argument("--slow_s", type=float, default=2.0,
                        help="a call slower than this gets --slow_reps rounds")
    parser.add_argument("--slow_reps", type=int, default=3)
    parser.add_argument("--memory_fraction", type=float, default=0.5,
                        help="skip a peer whose estimated memory exceeds this fraction of the "
                             "available memory")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md's section")
    parser.add_argument("--tflv_only", action="store_true",
                        help="time tflv and the bare TF loops only (no TFP, PyTorch, Pyro): "
                             "quick runs while working on tflv")
    parser.add_argument("--memory_child", default="", choices=["", *MEMORY_TASKS],
                        help="internal: run one task of the peak-memory table and print it")
    return parser.parse_args()


MEMORY_WORKLOAD = (8, 1000, 16, 1000)
MEMORY_TASKS = ("log p", "log p + grad", "log p + grad, autodiff through the loop")


def memory_child(task: str) -> None:
    """Compiles one task of the memory table (tflv, XLA) and prints the sizes of its buffers.

    XLA assigns every buffer of a compiled program before it runs; `--xla_dump_to` writes that
    assignment. The figures are its "Total bytes used" (parameters, outputs and temporaries)
    and the preallocated temporary block (the program's own working memory). "autodiff through
    the loop" replaces the hand-written backward pass by TF's autodiff through the same forward
    loop (`_forward._recursion`, as before the backward pass was written by hand).
    """
    import glob
    import tempfile

    dump = tempfile.mkdtemp(prefix="hmm_forward_xla_")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_dump_to={dump} --xla_dump_hlo_pass_re=^$")
    import tensorflow as tf

    from tflv.distributions import HMM, _forward

    w = Workload(*MEMORY_WORKLOAD)
    params = [tf.Variable(p) for p in (w.initial, w.transition, w.emission)]
    x = tf.constant(w.x)

    def log_p(x):
        return tf.reduce_sum(HMM(*params).log_prob(x))

    def with_gradient(x):
        with tf.GradientTape() as tape:
            total = log_p(x)
        return total, tape.gradient(total, params)

    if task.endswith("autodiff through the loop"):
        def autodiff(initial, factor, emissions, mask, scaled):
            return _forward._recursion(initial, [factor], [factor.shape.rank == 4], emissions,
                                       mask, "sum", scaled)
        _forward._with_backward_pass = autodiff
    fn = tf.function(log_p if task == "log p" else with_gradient, jit_compile=True)
    tf.nest.map_structure(lambda t: t.numpy(), fn(x))
    files = glob.glob(os.path.join(dump, "*after_optimizations-buffer-assignment.txt"))
    if len(files) != 1:
        raise RuntimeError(f"expected one XLA buffer assignment in {dump}, found {files}")
    text = open(files[0]).read()
    total = int(re.search(r"^Total bytes used: (\d+)", text, re.M).group(1))
    temp = sum(int(n) for n in re.findall(r"^allocation \d+: size (\d+), preallocated-temp",
                                          text, re.M))
    print(json.dumps({task: {"total_bytes": total, "temp_bytes": temp}}))


def peak_memory() -> dict:
    """{task: {total_bytes, temp_bytes}} of the compiled XLA programs, one child per task (XLA
    flags are read when TF starts)."""
    import subprocess

    peaks = {}
    for task in MEMORY_TASKS:
        out = subprocess.run([sys.executable, os.path.abspath(__file__),
                              f"--memory_child={task}"], check=True, capture_output=True,
                             text=True).stdout
        peaks.update(json.loads(out.strip().splitlines()[-1]))
    return peaks


def gemm_peak_gflops(n: int = 2048, reps: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def available_bytes() -> int:
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) * 1024


class Workload:
    """Shared data of one row: float32 logits, tokens int [B, T], lengths [B] (one = T)."""

    def __init__(self, b: int, t: int, k: int, v: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.b, self.t, self.k, self.v = b, t, k, v
        self.initial = rng.standard_normal(k).astype(np.float32)
        self.transition = rng.standard_normal((k, k)).astype(np.float32)
        self.emission = rng.standard_normal((k, v)).astype(np.float32)
        self.x = rng.integers(0, v, size=(b, t)).astype(np.int32)
        self.lengths = rng.integers(t // 2, t + 1, size=b)
        self.lengths[0] = t
        self.mask = np.arange(t)[None, :] < self.lengths[:, None]

    @property
    def name(self) -> str:
        return f"({self.b}, {self.t}, {self.k}, {self.v})"


def tf_implementations(w: Workload) -> dict:
    """name -> (log p + gradient fn, marginals fn or None); each returns numpy values."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from tflv.distributions import HMM

    tfd = tfp.distributions
    params = [tf.Variable(p) for p in (w.initial, w.transition, w.emission)]
    x, mask = tf.constant(w.x), tf.constant(w.mask)

    def with_gradient(log_prob_fn):
        def step(*args):
            with tf.GradientTape() as tape:
                total = tf.reduce_sum(log_prob_fn(*args))
            return total, tape.gradient(total, params)
        return step

    def tflv_log_prob(x, mask=None):
        return HMM(*params).log_prob(x, mask)

    def tfp_model():
        return tfd.HiddenMarkovModel(tfd.Categorical(logits=params[0]),
                                     tfd.Categorical(logits=params[1]),
                                     tfd.Categorical(logits=params[2]), num_steps=w.t)

    def bare_emissions():  # log-probs normalised once, gathered: [T, B, K]
        log_e = tf.nn.log_softmax(params[2])
        return tf.transpose(tf.gather(log_e, tf.transpose(x), axis=1), [1, 2, 0])

    def bare_scaled(emissions=None):
        emissions = bare_emissions() if emissions is None else emissions
        shift = tf.reduce_max(emissions, -1, keepdims=True)
        probs = tf.exp(emissions - shift)
        trans = tf.nn.softmax(params[1])
        alpha = tf.nn.softmax(params[0])[None] * probs[0]
        scale = tf.reduce_sum(alpha, -1, keepdims=True)

        def step(carry, elems):
            alpha, log_z = carry
            p, s = elems
            alpha = tf.matmul(alpha, trans) * p
            scale = tf.reduce_sum(alpha, -1, keepdims=True)
            return alpha / scale, log_z + tf.math.log(scale) + s

        _, log_z = tf.scan(step, (probs[1:], shift[1:]),
                           initializer=(alpha / scale, tf.math.log(scale) + shift[0]))
        return log_z[-1, :, 0]

    def bare_log():
        emissions = bare_emissions()
        trans = tf.nn.log_softmax(params[1])

        def step(alpha, e):
            return tf.reduce_logsumexp(alpha[:, :, None] + trans, axis=1) + e

        alpha = tf.scan(step, emissions[1:],
                        initializer=tf.nn.log_softmax(params[0])[None] + emissions[0])
        return tf.reduce_logsumexp(alpha[-1], -1)

    def bare_unary():
        emissions = bare_emissions()
        with tf.GradientTape() as tape:
            tape.watch(emissions)
            log_z = bare_scaled(emissions)
        return tape.gradient(log_z, emissions)

    graph, xla = tf.function, lambda f: tf.function(f, jit_compile=True)
    impls = {
        "tflv": (graph(with_gradient(tflv_log_prob)), x),
        "tflv, masked": (graph(with_gradient(tflv_log_prob)), x, mask),
        "tflv XLA": (xla(with_gradient(tflv_log_prob)), x),
        "tflv XLA, masked": (xla(with_gradient(tflv_log_prob)), x, mask),
        "tflv XLA, log p only": (xla(tflv_log_prob), x),
        "tfp": (graph(with_gradient(lambda x: tfp_model().log_prob(x))), x),
        "bare scaled loop": (graph(with_gradient(bare_scaled)),),
        "bare scaled loop XLA": (xla(with_gradient(bare_scaled)),),
        "bare scaled loop XLA, log p only": (xla(bare_scaled),),
        "bare log-space loop": (graph(with_gradient(bare_log)),),
    }
    marginals = {
        "tflv": (graph(lambda x: HMM(*params).posterior(x).unary), x),
        "tflv XLA": (xla(lambda x: HMM(*params).posterior(x).unary), x),
        "tflv XLA, + pairwise": (xla(lambda x: HMM(*params).posterior_marginals(x)), x),
        "tfp": (graph(lambda x: tfp_model().posterior_marginals(x).probs_parameter()), x),
        "bare scaled loop XLA": (xla(bare_unary),),
    }
    pyro_initial = tf.reduce_logsumexp(tf.nn.log_softmax(params[0])[:, None]
                                       + tf.nn.log_softmax(params[1]), axis=0)
    checks = {"tflv": HMM(*params).log_prob(x).numpy(),
              "tflv, pyro convention": HMM(pyro_initial, params[1], params[2]).log_prob(x).numpy()}
    return impls, marginals, checks


def torch_implementations(w: Workload) -> tuple[dict, dict, dict]:
    import pyro.distributions as pdist
    import torch
    import torch_struct

    params = [torch.tensor(p, requires_grad=True) for p in (w.initial, w.transition,
                                                            w.emission)]
    x = torch.tensor(w.x, dtype=torch.long)

    def with_gradient(log_prob_fn):
        def step():
            total = log_prob_fn().sum()
            return total.detach(), torch.autograd.grad(total, params)
        return step

    def struct_model():
        log_init, log_trans, log_emit = (torch.log_softmax(p, -1) for p in params)
        # torch-struct scores edges [z_n, z_{n-1}]; emission [V, K].
        return torch_struct.HMM(log_trans.T, log_emit.T, log_init, x)

    def pyro_log_prob():
        return pdist.DiscreteHMM(params[0], params[1],
                                 pdist.Categorical(logits=params[2])).log_prob(x)

    def bare_scaled():
        log_e = torch.log_softmax(params[2], -1)[:, x].permute(2, 1, 0)  # [T, B, K]
        shift = log_e.max(-1, keepdim=True).values.detach()
        probs = torch.exp(log_e - shift)
        trans = torch.softmax(params[1], -1)
        alpha = torch.softmax(params[0], -1)[None] * probs[0]
        scale = alpha.sum(-1, keepdim=True)
        alpha, log_z = alpha / scale, torch.log(scale) + shift[0]
        for t in range(1, w.t):
            alpha = (alpha @ trans) * probs[t]
            scale = alpha.sum(-1, keepdim=True)
            alpha, log_z = alpha / scale, log_z + torch.log(scale) + shift[t]
        return log_z[:, 0]

    impls = {"torch-struct": (with_gradient(lambda: struct_model().partition),),
             "pyro": (with_gradient(pyro_log_prob),),
             "bare scaled loop (PyTorch)": (with_gradient(bare_scaled),)}
    marginals = {"torch-struct": (lambda: struct_model().marginals,)}
    def check(log_prob_fn):  # log p(x) [B], computed only for the peers that are run
        def run():
            with torch.no_grad():
                return log_prob_fn().numpy()
        return run

    checks = {"torch-struct": check(lambda: struct_model().partition),
              "pyro": check(pyro_log_prob), "bare scaled loop (PyTorch)": check(bare_scaled)}
    return impls, marginals, checks


def estimated_bytes(name: str, w: Workload) -> float:
    """Peak memory of the peers' own algorithms (4-byte floats, forward + saved for backward)."""
    if name == "tfp":  # emission log-probs normalised per (t, b, k): [T, B, K, V]
        return 1.2 * 4.0 * w.t * w.b * w.k * w.v
    if name == "torch-struct":  # log-semiring matmul of a parallel scan: [B, N/2, K, K, K]
        bins = 2 ** math.ceil(math.log2(max(w.t - 1, 1)))
        return 3 * 4.0 * w.b * bins / 2 * w.k ** 3
    if name == "pyro":  # the gradient of its emission gather is a dense [B, T, K, V]
        return max(4.0 * w.b * w.t * w.k * w.v, 6 * 4.0 * w.b * w.t * w.k ** 2)
    return 0.0


def run_once(fn, args) -> float:
    import tensorflow as tf
    import torch

    start = time.perf_counter()
    out = fn(*args)
    for leaf in tf.nest.flatten(out):
        if isinstance(leaf, torch.Tensor):
            leaf.sum().item()
        else:
            np.asarray(leaf)
    return time.perf_counter() - start


def measure(tasks: dict, reps: int, slow_s: float, slow_reps: int) -> dict:
    """Interleaved timings: {name: dict(first_s, median_ms, n)}."""
    first, times, wanted = {}, {name: [] for name in tasks}, {}
    for name, (fn, *args) in tasks.items():
        first[name] = run_once(fn, args)
        times[name].append(run_once(fn, args))
        wanted[name] = slow_reps if times[name][0] > slow_s else reps
        print(f"  warm {name}: first {first[name]:.2f} s, then {times[name][0] * 1e3:.1f} ms",
              flush=True)
    for round_ in range(1, max(wanted.values())):
        for name, (fn, *args) in tasks.items():
            if round_ < wanted[name]:
                times[name].append(run_once(fn, args))
    return {name: dict(first_s=first[name], median_ms=1e3 * statistics.median(times[name]),
                       n=len(times[name])) for name in tasks}


def bench_row(w: Workload, args: argparse.Namespace) -> dict:
    import torch  # noqa: F401  (imported before TF work so thread pools are set up alike)

    tf_grad, tf_marg, checks = tf_implementations(w)
    torch_grad, torch_marg, torch_checks = torch_implementations(w)
    if args.tflv_only:
        torch_grad, torch_marg, torch_checks = {}, {}, {}
        for tasks in (tf_grad, tf_marg):
            tasks.pop("tfp")
    budget = args.memory_fraction * available_bytes()
    skipped = {}
    for tasks in (tf_grad, tf_marg, torch_grad, torch_marg):
        for name in list(tasks):
            need = estimated_bytes(name, w)
            if need > budget:
                skipped[name] = need
                del tasks[name]
    # Agreement of log p(x) (each on its convention) before timing anything.
    for name, check in torch_checks.items():
        if name in skipped:
            continue
        ref = checks["tflv, pyro convention" if name == "pyro" else "tflv"]
        error = float(np.max(np.abs(check() - ref) / np.abs(ref)))
        print(f"  {name}: max relative difference of log p(x) from tflv {error:.1e}")
        assert error < 1e-4, f"{name} disagrees with tflv"
    grad = measure({**tf_grad, **torch_grad}, args.reps, args.slow_s, args.slow_reps)
    marg = measure({**tf_marg, **torch_marg}, args.reps, args.slow_s, args.slow_reps)
    memory = peak_memory() if (w.b, w.t, w.k, w.v) == MEMORY_WORKLOAD else None
    return dict(workload=w.name, b=w.b, t=w.t, k=w.k, v=w.v, grad=grad, marginals=marg,
                peers_run=not args.tflv_only,
                skipped={k: v / 2 ** 30 for k, v in skipped.items()}, memory=memory)


def report(rows: list[dict], peak: float, command: str, loads: tuple[float, float],
           minutes: float) -> str:
    lines = [SECTION, "",
             f"Command: `{command}` ({minutes:.0f} min; peers from `bench/requirements.txt`: "
             f"{peer_versions()}). Machine: {cpu_model()}, "
             f"{os.cpu_count()} cores ({platform.machine()}), numpy float32 GEMM peak measured "
             f"in the same run: **{peak:.0f} GFLOP/s**. Load average (1 min) {loads[0]:.1f} at "
             f"the start and {loads[1]:.1f} at the end: the machine is shared, so absolute "
             "times are noisy; "
             "the implementations are timed side by side with interleaved calls in one run, so "
             "their ratios hold. float32; times are medians of n calls after a first call "
             "(whose time, tracing and XLA compilation included, is the last column). "
             "log p + grad = Σ_b log p(x_b) and its gradient w.r.t. the initial, transition and "
             "emission logits.", ""]
    for row in rows:
        grad, marg = row["grad"], row["marginals"]
        tflv_ms = grad["tflv XLA"]["median_ms"]
        lines += [f"### (B, T, K, V) = {row['workload']}", "",
                  "| implementation | log p + grad (ms) | n | × tflv XLA | first call (s) |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for name, r in grad.items():
            lines.append(f"| {name} | {r['median_ms']:.1f} | {r['n']} | "
                         f"{r['median_ms'] / tflv_ms:.1f} | {r['first_s']:.1f} |")
        for name, gib in row["skipped"].items():
            lines.append(f"| {name} | not run: needs ~{gib:.0f} GiB | | | |")
        lines += ["", "| implementation | posterior marginals (ms) | n | first call (s) |",
                  "| --- | ---: | ---: | ---: |"]
        for name, r in marg.items():
            lines.append(f"| {name} | {r['median_ms']:.1f} | {r['n']} | {r['first_s']:.1f} |")
        if row.get("memory"):
            lines += ["", "| tflv XLA, compiled program | XLA buffers, total (MiB) | "
                      "of which temporaries (MiB) |", "| --- | ---: | ---: |"]
            for task, sizes in row["memory"].items():
                lines.append(f"| {task} | {sizes['total_bytes'] / 2 ** 20:.2f} | "
                             f"{sizes['temp_bytes'] / 2 ** 20:.2f} |")
        r = ratios(row, peak)
        lines += ["", f"tflv XLA vs packaged peers: "
                  + ", ".join(f"{v:.{0 if v >= 10 else 1}f}× faster than {n}"
                              for n, v in r["peers"].items())
                  + f"; vs the bare scaled loop under XLA: {r['loop']:.2f}× its time "
                  f"(log p alone: {r['forward_loop']:.2f}×). "
                  f"Forward recursion alone (log p, XLA) {r['forward_ms']:.2f} ms = "
                  f"{r['forward_share'] * peak:.1f} GFLOP/s = {100 * r['forward_share']:.0f}% of "
                  f"the GEMM peak; log p + grad {100 * r['grad_share']:.0f}%, "
                  f"{r['grad_over_forward']:.1f}× log p alone. "
                  f"Masks cost {100 * r['mask_costs'][0]:+.0f}% (graph), "
                  f"{100 * r['mask_costs'][1]:+.0f}% (XLA).", ""]
    return "\n".join(lines + goals(rows, peak)) + "\n"


def ratios(row: dict, peak: float) -> dict:
    """One row's figures: tflv XLA's speed-up over each peer, its time over the bare XLA loop,
    the masks' extra cost (graph, XLA) and the shares of the GEMM peak (forward alone, with
    gradient)."""
    grad = row["grad"]
    flops = 2.0 * row["b"] * row["k"] ** 2 * (row["t"] - 1)
    tflv_ms = grad["tflv XLA"]["median_ms"]
    forward_ms = grad["tflv XLA, log p only"]["median_ms"]
    return {"peers": {n: grad[n]["median_ms"] / tflv_ms for n in PEERS if n in grad},
            "loop": tflv_ms / grad["bare scaled loop XLA"]["median_ms"],
            "forward_loop": forward_ms / grad["bare scaled loop XLA, log p only"]["median_ms"],
            "mask_costs": [grad[f"{m}, masked"]["median_ms"] / grad[m]["median_ms"] - 1
                           for m in ("tflv", "tflv XLA")],
            "forward_ms": forward_ms,
            "forward_share": flops / forward_ms / 1e6 / peak,
            "grad_over_forward": tflv_ms / forward_ms,
            "grad_share": 3 * flops / tflv_ms / 1e6 / peak}


def goals(rows: list[dict], peak: float) -> list[str]:
    """The structured-distributions issues' goals, each checked on this run's rows."""
    def verdict(ok: bool) -> str:
        return "holds" if ok else "**not met**"

    peer_rows, loop_rows, mask_rows, gemm_rows, grad_rows, fwd_rows = [], [], [], [], [], []
    ok = {"peers": True, "loop": True, "masks": True, "gemm": True, "grad": True,
          "forward_loop": True}
    for row in rows:
        r = ratios(row, peak)
        need = 100.0 if (row["b"], row["t"], row["k"], row["v"]) == WORKLOADS[0] else 1.0
        ok["peers"] &= all(v > need for v in r["peers"].values())
        peer_rows.append(f"(B, T, K) = ({row['b']}, {row['t']}, {row['k']}): "
                         + (", ".join(f"{v:.0f}× {n}" for n, v in r["peers"].items())
                            or ("peers not run (--tflv_only)" if not row["peers_run"]
                                else "no peer fits in memory (table)")))
        ok["loop"] &= r["loop"] <= 1.5
        loop_rows.append(f"{r['loop']:.2f}×")
        ok["grad"] &= r["grad_over_forward"] <= 3.0
        grad_rows.append(f"{r['grad_over_forward']:.1f}×")
        ok["forward_loop"] &= r["forward_loop"] <= 1.1
        fwd_rows.append(f"{r['forward_loop']:.2f}×")
        ok["masks"] &= max(r["mask_costs"]) <= 0.10
        mask_rows.append(" / ".join(f"{100 * c:+.0f}%" for c in r["mask_costs"]))
        if row["k"] == 256:
            ok["gemm"] &= r["forward_share"] >= 0.30
            gemm_rows.append(f"{100 * r['forward_share']:.0f}%")
    return ["### Against the goals", "",
            f"- Faster than every packaged peer on every row, ≥ 100× on (32, 50, 64): "
            + (verdict(ok['peers']) if all(row.get("peers_run", True) for row in rows)
               else "not checked") + "; " + "; ".join(peer_rows) + ".",
            f"- Within 1.5× of the bare scaled loop under XLA on every row: "
            f"{verdict(ok['loop'])}; " + ", ".join(loop_rows) + ".",
            f"- ≥ 30% of the matmul peak at K = 256 (forward recursion under XLA): "
            f"{verdict(ok['gemm'] and bool(gemm_rows))}; " + (", ".join(gemm_rows) or "not run")
            + ".",
            f"- Masks cost no more than 10% (graph / XLA): {verdict(ok['masks'])}; "
            + ", ".join(mask_rows) + ".",
            f"- log p + grad ≤ 3× log p alone (tflv XLA; one matmul forward, two backward): "
            f"{verdict(ok['grad'])}; " + ", ".join(grad_rows) + ".",
            f"- log p alone within 1.1× of the bare scaled loop's log p alone (both XLA): "
            f"{verdict(ok['forward_loop'])}; " + ", ".join(fwd_rows) + "."]


def peer_versions() -> str:
    """Installed versions of the PyTorch peers, as `name version` pairs."""
    from importlib import metadata
    found = []
    for dist in ("torch", "torch-struct", "pyro-ppl"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} not installed")
    return ", ".join(found)


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def write_section(text: str, path: str, section: str = SECTION) -> None:
    """Replaces (or appends) the section `section` of BENCHMARKS.md with `text`."""
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else (
        old.rstrip("\n") + "\n\n" + text)
    with open(path, "w") as f:
        f.write(new)


def main() -> None:
    args = parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    start = time.time()
    load_start = os.getloadavg()[0]
    peak = gemm_peak_gflops()
    print(f"numpy GEMM peak {peak:.0f} GFLOP/s", flush=True)
    rows = []
    for i in (int(r) for r in args.rows.split(",")):
        w = Workload(*WORKLOADS[i])
        print(f"workload {w.name}", flush=True)
        rows.append(bench_row(w, args))
    minutes = (time.time() - start) / 60
    command = "python bench/hmm_forward.py " + " ".join(sys.argv[1:])
    text = report(rows, peak, command.strip(), (load_start, os.getloadavg()[0]), minutes)
    print(text)
    print(json.dumps(rows))
    if args.write:
        write_section(text, os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), "BENCHMARKS.md"))


if __name__ == "__main__":
    main()
