"""Semi-Markov chain: tflv beside torch-struct's SemiMarkov and a bare XLA loop, in one run.

    python bench/semi_markov.py [--rows=0,1] [--reps=5] [--write]

Workloads (B, T, K, L): the neural-template size of Wiseman et al. (2018) on E2E — K = 55 × 5
= 275 states (their `-K 55 -Kmul 5`: 55 state types with 5 copies each), segments up to L = 4,
B = 16 sentences of T = 50 tokens — and a small row (K = 20) where torch-struct fits in memory.
Random float32 potentials (seeded): initial [K], transitions per row [B, K, K] (the neural
template conditions them on the record set), segments [B, T, L, K], lengths [K, L]. Each
implementation computes (a) Σ_b log Z_b and its gradient w.r.t. all four and (b) the posterior
segment marginals:

* `tflv`: `SemiMarkovChain(...).log_partition([mask])` + `tf.GradientTape` in `tf.function`,
  and under `jit_compile=True` (XLA); masked rows have random lengths in [T/2, T]. Marginals:
  `posterior().segments` (the state marginals [B, T, K] come with it).
* `bare loop XLA`, the reference speed: the same recursion written as plainly as possible (a
  `tf.scan` over the last L start scores, logsumexp over L, one batched matmul per step for the
  transitions, no masks, no −inf guards, no argument checks), under XLA; marginals are its
  gradient w.r.t. the segment potentials.
* `torch-struct`: `torch_struct.SemiMarkov` on its edge potentials [B, T, L+1, K, K]: edge
  [s, l, j, k] scores the segment [s, s+l) in state k followed by state j, so it is built from
  ours as φ_{s+l-1}[l, k] + λ[k, l] + θ[k, j] (+ θ_0[k] at s = 0; −log K for the last segment,
  whose "next state" is summed over), inside the timed call, from torch leaves that receive the
  gradient. `.partition` and `.marginals`. Its parallel scan takes log-semiring matmuls of
  [(L·K) × (L·K)] charts, O(B T (LK)³) memory: a row where that exceeds `--memory_fraction` of
  the available memory is reported with the estimate instead.

log Z is checked against torch-struct (where it runs) and the bare loop before timing.
Timing (shared helpers of `bench/hmm_forward.py`): a first call (tracing, XLA compilation), then
interleaved calls, one per implementation per round, medians of `--reps` rounds. Threads: TF
and torch defaults. Rows go to the `## Semi-Markov chain` section of BENCHMARKS.md with
`--write`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.hmm_forward import (available_bytes, cpu_model, measure,  # noqa: E402
                               peer_versions, write_section)

WORKLOADS = [(16, 50, 275, 4), (16, 50, 20, 4)]
SECTION = "## Semi-Markov chain"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="0,1", help="indices into the workloads")
    parser.add_argument("--reps", type=int, default=5, help="timed rounds per implementation")
    parser.add_argument("--slow_s", type=float, default=2.0,
                        help="a call slower than this gets --slow_reps rounds")
    parser.add_argument("--slow_reps", type=int, default=3)
    parser.add_argument("--memory_fraction", type=float, default=0.5,
                        help="skip torch-struct when its estimated memory exceeds this fraction "
                             "of the available memory")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md's section")
    return parser.parse_args()


class Workload:
    """Shared float32 potentials of one row and random lengths [B] (one = T)."""

    def __init__(self, b: int, t: int, k: int, max_len: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.b, self.t, self.k, self.max_len = b, t, k, max_len
        self.initial = rng.standard_normal(k).astype(np.float32)
        self.transition = rng.standard_normal((b, k, k)).astype(np.float32)
        self.segment = rng.standard_normal((b, t, max_len, k)).astype(np.float32)
        self.length = rng.standard_normal((k, max_len)).astype(np.float32)
        self.lengths = rng.integers(t // 2, t + 1, size=b)
        self.lengths[0] = t
        self.mask = np.arange(t)[None, :] < self.lengths[:, None]

    @property
    def name(self) -> str:
        return f"({self.b}, {self.t}, {self.k}, {self.max_len})"

    def arrays(self):
        return self.initial, self.transition, self.segment, self.length


def torch_struct_bytes(w: Workload) -> float:
    """Peak memory of torch-struct's parallel scan: the broadcast log-semiring matmul of
    [B, N/2, LK, LK] charts is [B, N/2, LK, LK, LK] floats, ×3 with what backward keeps."""
    bins = 2 ** math.ceil(math.log2(w.t))
    return 3 * 4.0 * w.b * bins / 2 * (w.max_len * w.k) ** 3


def tf_implementations(w: Workload):
    import tensorflow as tf

    from tflv.distributions import SemiMarkovChain

    params = [tf.Variable(p) for p in w.arrays()]
    mask = tf.constant(w.mask)

    def with_gradient(log_z_fn):
        def step(*args):
            with tf.GradientTape() as tape:
                total = tf.reduce_sum(log_z_fn(*args))
            return total, tape.gradient(total, params)
        return step

    def tflv_log_z(mask=None):
        return SemiMarkovChain(*params).log_partition(mask)

    def bare_log_z(segment=None):
        initial, transition, _, length = params
        segment = params[2] if segment is None else segment
        steps, max_len = w.t, w.max_len
        psi = tf.transpose(segment + tf.transpose(length)[None, None], [1, 0, 2, 3])
        starts_ok = (tf.range(steps)[:, None] - tf.range(max_len)[None]) >= 0
        psi = tf.where(starts_ok[:, None, :, None], psi, -np.inf)  # [T, B, L, K]
        shift = tf.reduce_max(transition, axis=[1, 2], keepdims=True)
        factor = tf.exp(transition - shift)

        def step(buffer, p):
            alpha = tf.reduce_logsumexp(buffer + p, axis=1)  # [B, K]
            top = tf.reduce_max(alpha, -1, keepdims=True)
            beta = tf.math.log(tf.matmul(tf.exp(alpha - top)[:, None], factor)[:, 0]) + top
            return tf.concat([(beta + shift[:, 0])[:, None], buffer[:, :-1]], 1)

        buffer = tf.concat([tf.broadcast_to(initial, [w.b, 1, w.k]),
                            tf.fill([w.b, max_len - 1, w.k], -np.inf)], 1)
        buffers = tf.scan(step, psi[:-1], initializer=buffer)
        return tf.reduce_logsumexp(tf.reduce_logsumexp(buffers[-1] + psi[-1], axis=1), -1)

    def bare_marginals():
        with tf.GradientTape() as tape:
            tape.watch(params[2])
            total = tf.reduce_sum(bare_log_z(params[2]))
        return tape.gradient(total, params[2])

    graph, xla = tf.function, lambda f: tf.function(f, jit_compile=True)
    grad = {"tflv": (graph(with_gradient(tflv_log_z)),),
            "tflv XLA": (xla(with_gradient(tflv_log_z)),),
            "tflv XLA, masked": (xla(with_gradient(tflv_log_z)), mask),
            "tflv XLA, log Z only": (xla(tflv_log_z),),
            "bare loop XLA": (xla(with_gradient(bare_log_z)),),
            "bare loop XLA, log Z only": (xla(bare_log_z),)}
    marginals = {"tflv XLA": (xla(lambda: SemiMarkovChain(*params).posterior().segments),),
                 "tflv XLA, + states": (xla(lambda: SemiMarkovChain(*params).posterior()),),
                 "bare loop XLA": (xla(bare_marginals),)}
    checks = {"tflv": tflv_log_z().numpy(), "bare loop": bare_log_z().numpy()}
    return grad, marginals, checks


def torch_implementations(w: Workload):
    import torch
    import torch_struct

    params = [torch.tensor(p, requires_grad=True) for p in w.arrays()]

    def edges():
        """[B, T, L+1, K(next), K(this)]: edge [s, l, j, k] = segment [s, s+l) in state k, then
        state j (module docstring)."""
        initial, transition, segment, length = params
        b, t, max_len, k = w.b, w.t, w.max_len, w.k
        out = torch.full((b, t, max_len + 1, k, k), -1e5)
        for l in range(1, max_len + 1):
            ends = torch.arange(t) + l - 1  # end of the segment starting at s
            ok = ends < t
            score = segment[:, ends[ok], l - 1, :] + length[:, l - 1]  # [B, S, K(this)]
            last = (ends[ok] == t - 1)[None, :, None, None]
            nxt = torch.where(last, torch.full((), -math.log(k)),
                              transition.transpose(1, 2)[:, None])  # [B, S, K(next), K(this)]
            value = score[:, :, None, :] + nxt
            value = torch.cat([value[:, :1] + initial, value[:, 1:]], 1)
            out[:, :int(ok.sum()), l] = value
        return out

    def grad_step():
        total = torch_struct.SemiMarkovCRF(edges()).partition.sum()
        return total.detach(), torch.autograd.grad(total, params)

    def check():
        with torch.no_grad():
            return torch_struct.SemiMarkovCRF(edges()).partition.numpy()

    return ({"torch-struct": (grad_step,)},
            {"torch-struct": (lambda: torch_struct.SemiMarkovCRF(edges()).marginals,)}, check)


def bench_row(w: Workload, args: argparse.Namespace) -> dict:
    import torch  # noqa: F401  (imported before TF work so thread pools are set up alike)

    tf_grad, tf_marg, checks = tf_implementations(w)
    need = torch_struct_bytes(w)
    skipped = {}
    ref = checks["tflv"]
    error = float(np.max(np.abs(checks["bare loop"] - ref) / np.abs(ref)))
    print(f"  bare loop: max relative difference of log Z from tflv {error:.1e}")
    assert error < 1e-5, "the bare loop disagrees with tflv"
    if need > args.memory_fraction * available_bytes():
        skipped["torch-struct"] = need / 2 ** 30
        torch_grad, torch_marg = {}, {}
    else:
        torch_grad, torch_marg, check = torch_implementations(w)
        error = float(np.max(np.abs(check() - ref) / np.abs(ref)))
        print(f"  torch-struct: max relative difference of log Z from tflv {error:.1e}")
        assert error < 1e-4, "torch-struct disagrees with tflv"
    grad = measure({**tf_grad, **torch_grad}, args.reps, args.slow_s, args.slow_reps)
    marg = measure({**tf_marg, **torch_marg}, args.reps, args.slow_s, args.slow_reps)
    return dict(workload=w.name, b=w.b, t=w.t, k=w.k, max_len=w.max_len, grad=grad,
                marginals=marg, skipped=skipped)


def report(rows: list[dict], command: str, loads: tuple[float, float], minutes: float) -> str:
    lines = [SECTION, "",
             f"Command: `{command}` ({minutes:.0f} min; peer from `bench/requirements.txt`: "
             f"{peer_versions().split(', pyro')[0]}). Machine: {cpu_model()}, "
             f"{os.cpu_count()} cores ({platform.machine()}), no GPU. Load average (1 min) "
             f"{loads[0]:.1f} at the start and {loads[1]:.1f} at the end: the machine is shared "
             "by other jobs, so absolute times are noisy; the implementations are timed side by "
             "side with interleaved calls in one run, so their ratios hold. float32; medians of "
             "n calls after a first call (whose time, tracing and XLA compilation included, is "
             "the last column). log Z + grad = Σ_b log Z_b and its gradient w.r.t. the initial, "
             "transition, segment and length potentials.", ""]
    for row in rows:
        grad, marg = row["grad"], row["marginals"]
        base = grad["tflv XLA"]["median_ms"]
        lines += [f"### (B, T, K, L) = {row['workload']}", "",
                  "| implementation | log Z + grad (ms) | n | × tflv XLA | first call (s) |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for name, r in grad.items():
            lines.append(f"| {name} | {r['median_ms']:.1f} | {r['n']} | "
                         f"{r['median_ms'] / base:.2f} | {r['first_s']:.1f} |")
        for name, gib in row["skipped"].items():
            lines.append(f"| {name} | not run: needs ~{gib:,.0f} GiB | | | |")
        base = marg["tflv XLA"]["median_ms"]
        lines += ["", "| implementation | segment marginals (ms) | n | × tflv XLA | "
                  "first call (s) |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, r in marg.items():
            lines.append(f"| {name} | {r['median_ms']:.1f} | {r['n']} | "
                         f"{r['median_ms'] / base:.2f} | {r['first_s']:.1f} |")
        lines.append("")
    return "\n".join(lines + goals(rows)) + "\n"


def goals(rows: list[dict]) -> list[str]:
    """Issue 23's two goals, each checked on this run's rows."""
    peer, loop = [], []
    ok_peer = ok_loop = True
    for row in rows:
        for task in ("grad", "marginals"):
            times = row[task]
            ours = times["tflv XLA"]["median_ms"]
            if "torch-struct" in times:
                speedup = times["torch-struct"]["median_ms"] / ours
                ok_peer &= speedup >= 10
                peer.append(f"{row['workload']} {task}: {speedup:.0f}×")
            ratio = ours / times["bare loop XLA"]["median_ms"]
            ok_loop &= ratio <= 1.5
            loop.append(f"{row['workload']} {task}: {ratio:.2f}×")
        if row["skipped"]:
            peer.append(f"{row['workload']}: torch-struct not run (memory, table)")
    verdict = lambda ok: "holds" if ok else "**not met**"
    return ["### Against the goals", "",
            f"- ≥ 10× torch-struct (where it runs): {verdict(ok_peer and any('×' in p for p in peer))}"
            f"; " + "; ".join(peer) + ".",
            f"- tflv XLA within 1.5× of the bare XLA loop: {verdict(ok_loop)}; "
            + "; ".join(loop) + "."]


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", message=".*arg_constraints")  # torch-struct's classes
    start, load_start = time.time(), os.getloadavg()[0]
    rows = []
    for i in (int(r) for r in args.rows.split(",")):
        w = Workload(*WORKLOADS[i])
        print(f"workload {w.name}", flush=True)
        rows.append(bench_row(w, args))
    command = ("python bench/semi_markov.py " + " ".join(sys.argv[1:])).strip()
    text = report(rows, command, (load_start, os.getloadavg()[0]), (time.time() - start) / 60)
    print(text)
    print(json.dumps(rows))
    if args.write:
        write_section(text, os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), "BENCHMARKS.md"), SECTION)


if __name__ == "__main__":
    main()
