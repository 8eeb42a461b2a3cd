"""Sequences sampled from a known hidden Markov model (generated, no files).

    π ~ Dir(α·1_K),  A_k ~ Dir(α·1_K),  B_k ~ Dir(α·1_V)               (parameters, seeded)
    z_1 ~ π,  z_t | z_{t-1} ~ A_{z_{t-1}},  x_t | z_t ~ B_{z_t},  T ~ Uniform{lo..hi}

Defaults: K = 4 states, V = 12 symbols, 2,000 train / 200 valid / 200 test sequences of lengths
10–30, α = 1, seed 0. Symbol v is the token `s{v}` with id v + 4 (after the reserved ids), so
`true_params["emission"]` is [K, 4 + V] over vocabulary ids, zero on the reserved ids; `initial`
is [K] and `transition` [K, K]. The true states are the `tags` of the `tagged` form, so a fitted
HMM can be checked against the generator (log-likelihood, state recovery).
Forms: `stream` (sequences joined by `<eos>`), `sentences`, `tokens`, `tagged`.

#### References
Rabiner (1989), "A Tutorial on Hidden Markov Models and Selected Applications in Speech
Recognition", Proc. IEEE.
"""
from __future__ import annotations

import functools

import numpy as np

from data import forms
from data.corpus import Corpus
from data.pipeline import Sequences
from data.vocab import EOS_ID, SPECIALS, Vocabulary


def load(data_dir: str | None = None, num_states: int = 4, num_symbols: int = 12,
         num_train: int = 2000, num_valid: int = 200, num_test: int = 200,
         length_range: tuple[int, int] = (10, 30), concentration: float = 1.0,
         seed: int = 0) -> Corpus:
    """A corpus sampled from a random HMM; `data_dir` is ignored (nothing is read)."""
    del data_dir
    lo, hi = length_range
    if not 1 <= lo <= hi:
        raise ValueError(f"length_range must be (lo, hi) with 1 <= lo <= hi, got {length_range}")
    if min(num_states, num_symbols, num_train, num_valid, num_test) < 1 or concentration <= 0:
        raise ValueError("num_states, num_symbols and the split sizes must be >= 1 and "
                         f"concentration > 0, got {num_states}, {num_symbols}, "
                         f"{(num_train, num_valid, num_test)}, {concentration}")
    vocab, params, symbols, states = _sample(num_states, num_symbols,
                                             (num_train, num_valid, num_test), (lo, hi),
                                             concentration, seed)
    streams = {split: s.wrap(suffix=EOS_ID).values for split, s in symbols.items()}
    return Corpus(
        "synthetic_hmm", tuple(symbols), vocab,
        {"stream": forms.stream(streams), "sentences": forms.sentences(symbols),
         "tokens": forms.tokens(symbols), "tagged": forms.tokens(symbols, {"tags": states})},
        {"vocab_size": len(vocab), "num_tags": num_states, "num_states": num_states,
         "num_symbols": num_symbols},
        {split: int(s.lengths.sum()) for split, s in symbols.items()},
        {split: len(s) for split, s in symbols.items()},
        true_params=params)


@functools.lru_cache(maxsize=None)
def _sample(k: int, v: int, sizes: tuple[int, int, int], length_range: tuple[int, int],
            alpha: float, seed: int):
    """Parameters, then per split the symbol ids and state `Sequences`; cached per process."""
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.full(k, alpha))
    transition = rng.dirichlet(np.full(k, alpha), size=k)
    emission = rng.dirichlet(np.full(v, alpha), size=k)
    vocab = Vocabulary([*SPECIALS, *(f"s{i}" for i in range(v))])
    offset = len(SPECIALS)
    symbols, states = {}, {}
    for split, n in zip(("train", "valid", "test"), sizes):
        lengths = rng.integers(length_range[0], length_range[1] + 1, size=n)
        z = np.empty((n, length_range[1]), np.int64)  # [N, T_max]: N chains sampled in parallel
        z[:, 0] = _categorical(rng, np.broadcast_to(initial, (n, k)))
        for t in range(1, length_range[1]):
            z[:, t] = _categorical(rng, transition[z[:, t - 1]])
        x = _categorical(rng, emission[z])  # [N, T_max]
        keep = np.arange(length_range[1]) < lengths[:, None]
        symbols[split] = Sequences(x[keep] + offset, lengths)
        states[split] = Sequences(z[keep], lengths)
    params = {"initial": initial, "transition": transition,
              "emission": np.concatenate([np.zeros((k, offset)), emission], axis=1)}
    return vocab, params, symbols, states


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of `probs` [..., C] (inverse-CDF with one uniform each)."""
    u = rng.random(probs.shape[:-1])[..., None]
    return np.minimum((u > np.cumsum(probs, axis=-1)).sum(-1), probs.shape[-1] - 1)
