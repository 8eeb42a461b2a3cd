"""Factorial hidden Markov model: exact likelihood and structured mean-field inference.

L independent Markov chains of K states each, z^l_t, jointly emit one token per position
through the sum of their emission logits (Ghahramani & Jordan 1997, with categorical
emissions as in the tutorial of Kim, Wiseman & Rush 2018):

    p(x, z) = Π_l [π_l(z^l_1) Π_t A_l(z^l_{t-1}, z^l_t)] Π_t softmax_v(Σ_l W_l[z^l_t, v])[x_t].

Each chain's logits W_l are first log_softmax-normalised over v, which does not change the
model (the shift is constant in v) and makes U_l = exp W_l a stochastic matrix.

**Exact** `log_prob`: the forward algorithm on the product state s = (z^1, …, z^L), S = K^L,
with the joint emission log p(x_t | s) = Σ_l W_l[s_l, x_t] - N(s), N(s) = log Σ_v exp Σ_l
W_l[s_l, v] computed once for all s (K^L × V work, once), and the transition applied chain by
chain as a Kronecker product: O(T L K^(L+1)) per row instead of the naive O(T K^(2L)).

**Structured mean field** `mean_field` / `elbo` (Ghahramani & Jordan 1997, §3.2): q(z) =
Π_l q_l(z^l), each q_l an HMM with chain l's own π_l, A_l and variational emission
log-potentials W_l[k, x_t] - c_{l,t}[k]. The expected log-normaliser is bounded by Jensen's
inequality over the factorised q and the tangent bound log S ≤ S/ξ + log ξ - 1 (Jordan et al.
1999), tight at ξ_t = S_t:

    E_q[N(z_t)] ≤ log S_t,   S_t = Σ_v Π_l (q_{l,t} U_l)[v],

giving the bound maximised by coordinate ascent,

    ELBO(q) = Σ_l (E_{q_l}[log π_l + Σ_t log A_l + Σ_t W_l[z_t, x_t]] + H[q_l]) - Σ_t log S_t
            = Σ_l (log Z_l + Σ_t <q_{l,t}, c_{l,t}>) - Σ_t log S_t  ≤  log p(x),

where log Z_l is the log-partition of q_l. For fixed ξ and q_{-l} the bound is linear in
q_{l,t}, so the optimal q_l is the HMM with c_{l,t}[k] = Σ_v U_l[k, v] G_{-l,t}[v] / ξ_t,
G_{-l,t} = Π_{m≠l} q_{m,t} U_m, and its marginals q_{l,t} are the gradient of log Z_l
(`_forward.log_partition_gradients`). Each update (ξ, then one chain) maximises the bound over
one block, so the ELBO never decreases. With one chain (or when the other chains' emissions do
not depend on their state) the bound is tight: ELBO = log p(x). A sweep costs O(T L K (K + V))
per row, linear in L. Numerics: the marginals (a gradient) are clipped at 0, q U at the
smallest normal number (which only raises S_t, so the bound stays a bound) and ξ_t is taken in
log space, so the sweeps stay finite and monotone with logits of ±50 in float32. The
returned ELBO is differentiable w.r.t. the model parameters at the final q (held fixed, as in
variational EM).

#### References

Ghahramani, Z. & Jordan, M. I. (1997). Factorial hidden Markov models. Machine Learning
29:245–273 (NeurIPS 1995).

Jordan, M. I., Ghahramani, Z., Jaakkola, T. S. & Saul, L. K. (1999). An introduction to
variational methods for graphical models. Machine Learning 37:183–233.

Kim, Y., Wiseman, S. & Rush, A. M. (2018). A tutorial on deep latent variable models of
natural language. arXiv:1812.06834.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tflv.distributions import _checks
from tflv.distributions._forward import (SUM_SEMIRINGS, check_semiring, forward,
                                         log_partition_gradients)


class MeanFieldPosterior(NamedTuple):
    """elbo [...] (a lower bound on log p(x)); marginals q(z^l_t = k) [..., T, L, K]."""

    elbo: tf.Tensor
    marginals: tf.Tensor


def _outer_sum(parts: list[tf.Tensor]) -> tf.Tensor:
    """L tensors [..., K] -> [..., K**L], entry (k_1..k_L) = Σ_l parts[l][..., k_l] (row-major)."""
    total = parts[0]
    for part in parts[1:]:
        total = total[..., :, None] + part[..., None, :]
        total = tf.reshape(total, tf.concat([tf.shape(total)[:-2], [-1]], axis=0))
    return total


class FactorialHMM:
    """L chains of K states with summed categorical emission logits (module docstring).

    Args:
      initial_logits: [L, K].
      transition_logits: [L, K, K] (rows: from-state).
      emission_logits: [L, K, V]; p(x_t | z_t) = softmax(Σ_l emission_logits[l, z^l_t]).
      semiring: "auto" (default), "scaled" or "log", for every forward pass (all exact; see
        `tflv.distributions.HMM`).
      validate_args: check token ids and masks with assertions.
      name: name scope.
    """

    def __init__(self, initial_logits, transition_logits, emission_logits,
                 semiring: str = "auto", validate_args: bool = True,
                 name: str = "FactorialHMM"):
        self._semiring = check_semiring(semiring, SUM_SEMIRINGS)
        self._validate_args = validate_args
        self._name = name
        first = _checks.float_tensor(initial_logits, name="initial_logits")
        self._params = (first, _checks.float_tensor(transition_logits, first.dtype),
                        _checks.float_tensor(emission_logits, first.dtype))
        names = ("initial_logits [L, K]", "transition_logits [L, K, K]",
                 "emission_logits [L, K, V]")
        for name_, param, rank in zip(names, self._params, (2, 3, 3)):
            if param.shape.rank != rank:
                raise ValueError(f"{name_} must have rank {rank}, got shape {param.shape}")
        initial, transition, emission = self._params
        _checks.same_size([(names[0], initial, 0), (names[1], transition, 0),
                           (names[2], emission, 0)], "number of chains L", False)
        _checks.same_size([(names[0], initial, 1), (names[1], transition, 1),
                           (names[1], transition, 2), (names[2], emission, 1)],
                          "number of states K", False)
        if initial.shape[0] is None or initial.shape[1] is None:
            raise ValueError(f"L and K must be static, got initial_logits shape {initial.shape}")
        self._num_chains, self._num_states = initial.shape[0], initial.shape[1]

    @property
    def num_chains(self) -> int:
        return self._num_chains

    @property
    def num_states(self) -> int:
        return self._num_states

    @property
    def dtype(self) -> tf.DType:
        return self._params[0].dtype

    def _inputs(self, x, mask):
        """-> (tokens int [B, T] with 0 at padding, mask bool [T, B] or None, BatchShape)."""
        x = tf.convert_to_tensor(x)
        _checks.known_rank(x, "x", 1)
        mask = _checks.as_mask(mask, x)
        x, mask = _checks.after(
            _checks.assert_tokens(x, mask, tf.shape(self._params[2])[-1], self._validate_args)
            + _checks.assert_prefix_mask(mask, self._validate_args), x, mask)
        batch = _checks.BatchShape([("x", x, 1)] + ([("mask", mask, 1)] if mask is not None
                                                    else []))
        tokens = batch.flatten(x, 1)
        if mask is None:
            return tokens, None, batch
        flat_mask = batch.flatten(mask, 1)
        return tf.where(flat_mask, tokens, tf.zeros_like(tokens)), tf.transpose(flat_mask), batch

    def _log_parameters(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return tuple(tf.nn.log_softmax(p, axis=-1) for p in self._params)

    def log_prob(self, x, mask=None) -> tf.Tensor:
        """Exact log p(x) [...] through the product state space (x: int [..., T])."""
        with tf.name_scope(f"{self._name}_log_prob"):
            tokens, mask, batch = self._inputs(x, mask)
            log_init, log_trans, log_emit = self._log_parameters()
            chains = range(self._num_chains)
            # N(s) = log Σ_v exp Σ_l W_l[s_l, v]: [S], once.
            normalizer = tf.reduce_logsumexp(
                _outer_sum([tf.transpose(log_emit[l]) for l in chains]), axis=0)
            columns = tf.gather(log_emit, tf.transpose(tokens), axis=2)  # [L, K, T, B]
            emissions = _outer_sum([tf.transpose(columns[l], [1, 2, 0]) for l in chains])
            initial = _outer_sum([log_init[l] for l in chains])  # [S]
            initial = tf.broadcast_to(initial, [tf.shape(tokens)[0], tf.shape(initial)[0]])
            log_z = forward(initial, [log_trans[l] for l in chains], emissions - normalizer,
                            mask, self._semiring).log_z
            return batch.unflatten(log_z)

    def mean_field(self, x, mask=None, num_iterations: int = 10) -> MeanFieldPosterior:
        """Structured mean field by `num_iterations` coordinate-ascent sweeps (a tf.while_loop).

        Returns MeanFieldPosterior(elbo [...], marginals q(z^l_t = k) [..., T, L, K]).
        """
        with tf.name_scope(f"{self._name}_mean_field"):
            tokens, mask, batch = self._inputs(x, mask)
            if mask is None:
                mask = tf.ones(tf.shape(tf.transpose(tokens)), tf.bool)
            real = tf.cast(mask, self.dtype)[..., None]  # [T, B, 1]
            num_chains, num_states = self._num_chains, self._num_states
            params = self._log_parameters()
            rows = tf.shape(tokens)[0]

            def pieces(log_emit):  # -> W_l[k, x_t] as [L, T, B, K], U_l = exp W_l [L, K, V]
                observed = tf.transpose(tf.gather(log_emit, tf.transpose(tokens), axis=2),
                                        [0, 2, 3, 1])
                return observed, tf.exp(log_emit)

            tiny = np.finfo(self.dtype.as_numpy_dtype).tiny

            def log_mixture(q, emit_probs):  # log (q U) [..., T, B, V], uniform q at padding
                # Marginals from a gradient can be −1e-17 and U can underflow: q is clipped at
                # 0 and q U at the smallest normal number, which only raises S_t (the bound
                # stays a lower bound) and keeps the log and its gradient finite.
                safe = tf.where(mask[..., None], tf.maximum(q, 0), tf.ones_like(q) / num_states)
                return tf.math.log(tf.maximum(
                    tf.einsum("...tbk,...kv->...tbv", safe, emit_probs), tiny))

            def chain_rows(t):  # [L, ...] -> [L * B, ...], chain-major
                shape = tf.shape(t)[1:]
                return tf.reshape(tf.broadcast_to(t[:, None], tf.concat(
                    [[num_chains, rows], shape], 0)), tf.concat([[-1], shape], 0))

            # Coordinate ascent on constants: q and c are then held fixed.
            log_init, log_trans, log_emit = (tf.stop_gradient(p) for p in params)
            observed, emit_probs = pieces(log_emit)

            def chain_marginals(chain: int, offset: tf.Tensor) -> tf.Tensor:  # -> q_l [T, B, K]
                initial = tf.broadcast_to(log_init[chain], [rows, num_states])
                _, grads = log_partition_gradients(initial, [log_trans[chain]],
                                                   observed[chain] - offset, mask, self._semiring)
                return grads["emissions"]

            def sweep(i, q, c, log_mix):
                q, c, log_mix = (tf.unstack(t, num=num_chains) for t in (q, c, log_mix))
                for chain in range(num_chains):
                    others = tf.add_n([log_mix[m] for m in range(num_chains) if m != chain]
                                      or [tf.zeros_like(log_mix[chain])])
                    others -= tf.reduce_max(others, axis=-1, keepdims=True)
                    # ξ_t / max G in log space: exp(log_mix) alone may flush to zero.
                    log_xi = tf.reduce_logsumexp(log_mix[chain] + others, axis=-1, keepdims=True)
                    c[chain] = tf.exp(tf.math.log(tf.einsum(
                        "tbv,kv->tbk", tf.exp(others), emit_probs[chain])) - log_xi) * real
                    q[chain] = chain_marginals(chain, c[chain])
                    log_mix[chain] = log_mixture(q[chain], emit_probs[chain])
                return i + 1, tf.stack(q), tf.stack(c), tf.stack(log_mix)

            c = tf.zeros_like(observed)
            q = tf.stack([chain_marginals(l, c[l]) for l in range(num_chains)])
            _, q, c, _ = tf.while_loop(
                lambda i, *_: i < num_iterations, sweep,
                (tf.constant(0), q, c, log_mixture(q, emit_probs)),
                maximum_iterations=num_iterations)

            # The bound at (q, c), differentiable w.r.t. the parameters.
            log_init, log_trans, log_emit = params
            observed, emit_probs = pieces(log_emit)
            emissions = tf.reshape(tf.transpose(observed - c, [1, 0, 2, 3]),
                                   [tf.shape(observed)[1], -1, num_states])  # [T, L * B, K]
            log_z = forward(chain_rows(log_init), [chain_rows(log_trans)], emissions,
                            tf.tile(mask, [1, num_chains]), self._semiring).log_z
            log_z = tf.reshape(log_z, [num_chains, rows])
            log_s = tf.reduce_logsumexp(
                tf.reduce_sum(log_mixture(q, emit_probs), axis=0), axis=-1)  # [T, B]
            # multiply_no_nan: a state with q = 0 may have c = inf (a −inf potential).
            elbo = (tf.reduce_sum(log_z + tf.reduce_sum(tf.math.multiply_no_nan(c, q),
                                                        axis=[1, 3]), axis=0)
                    - tf.reduce_sum(log_s * real[..., 0], axis=0))
            marginals = tf.transpose(q, [2, 1, 0, 3])  # [B, T, L, K]
            return MeanFieldPosterior(batch.unflatten(elbo), batch.unflatten(marginals))

    def elbo(self, x, mask=None, num_iterations: int = 10) -> tf.Tensor:
        """The structured mean-field lower bound on log p(x) [...] (see `mean_field`)."""
        return self.mean_field(x, mask, num_iterations).elbo
