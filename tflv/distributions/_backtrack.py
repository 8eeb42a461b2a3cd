"""Backward conditionals of a linear chain: Viterbi backtracking, forward-filtering
backward-sampling (FFBS) and pairwise posterior marginals.

All three read the chain backwards through the same conditional. By the Markov property,

    p(z_t = i | z_{t+1} = j, x) = p(z_t = i | z_{t+1} = j, x_{≤t}) ∝ α_t[i] exp θ_{t+1}[i, j].

*Pairwise marginals*: p(z_t, z_{t+1} | x) = p(z_{t+1} | x) p(z_t | z_{t+1}, x_{≤t}), from the
unary marginals (the gradient of log Z, `_forward.log_partition_gradients`) and the filtered
α_t of the same forward pass: O(T K²) elementwise work and no per-step transition tensor in
the forward pass, which stays one matmul per step.

*Backtracking*: given the log filtered scores α_t [S] of a forward pass (`_forward.forward`)
and the transition log-potentials θ_{t+1}[i, j] (z_t = i -> z_{t+1} = j), a path is read
backwards:

    z_T = argmax_k (α_T[k] + g_T[k]),
    z_t = argmax_k (α_t[k] + θ_{t+1}[k, z_{t+1}] + g_t[k]).

With max-semiring α and g = 0 this is Viterbi's backtrace (z is the highest-scoring path).
With sum-semiring α (the filtered distributions p(z_t | x_{≤t})) and g i.i.d. standard
Gumbel noise it is FFBS: by the Gumbel-max trick z_t is an exact draw from
p(z_t | z_{t+1}, x) ∝ α_t[z_t] exp θ_{t+1}[z_t, z_{t+1}] (Chib 1996; Früwirth-Schnatter 1994),
so z is an exact sample of the posterior p(z | x).

With a mask, z_{L-1} (the last real position of a row of length L) is drawn from α_{L-1}
alone, and padded positions are set to 0. Tensors are time-major.

#### References

Viterbi, A. (1967). Error bounds for convolutional codes and an asymptotically optimum
decoding algorithm. IEEE Transactions on Information Theory 13(2).

Frühwirth-Schnatter, S. (1994). Data augmentation and dynamic linear models. Journal of Time
Series Analysis 15(2).

Chib, S. (1996). Calculating posterior distributions and modal estimates in Markov mixture
models. Journal of Econometrics 75(1).

Gumbel, E. J. (1954); Maddison, C. J., Tarlow, D. & Minka, T. (2014). A* sampling. NeurIPS.
"""
from __future__ import annotations

import tensorflow as tf

from tflv.distributions._forward import at_least_two_steps


def _column(transition: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
    """θ[:, z] per row. transition: [K, K] or [B, K, K]; state: int32 [B] -> [B, K]."""
    if transition.shape.rank == 2:
        return tf.gather(tf.transpose(transition), state)
    return tf.gather(transition, state, axis=2, batch_dims=1)


def backtrack(log_filtered: tf.Tensor, transition: tf.Tensor, mask: tf.Tensor | None = None,
              noise: tf.Tensor | None = None) -> tf.Tensor:
    """Reads a path backwards (module docstring).

    Args:
      log_filtered: [T, B, K] log α_t from `forward` (max semiring for Viterbi, sum for FFBS).
      transition: transition log-potentials, [K, K], [B, K, K] or per step [T-1, B, K, K].
      mask: bool [T, B] (a prefix per row) or None.
      noise: [T, B, K] Gumbel noise for sampling, or None for the argmax path.

    Returns:
      int32 [T, B] states, 0 at padded positions.
    """
    scores = log_filtered if noise is None else log_filtered + noise
    per_step = transition.shape.rank == 4
    # T = 0 or 1 (possibly unknown when the graph is built): pad with masked positions.
    scores, mask, padded, steps = at_least_two_steps(scores, mask, [transition] if per_step
                                                     else [])
    transition = padded[0] if per_step else transition
    if mask is None:
        mask = tf.ones(tf.shape(scores)[:2], dtype=tf.bool)
    last = tf.argmax(scores[-1], axis=-1, output_type=tf.int32)  # [B]

    def step(following, elems):
        score, next_real = elems[:2]
        step_transition = elems[2] if per_step else transition
        edges = tf.where(next_real[:, None], _column(step_transition, following),
                         tf.zeros_like(score))
        return tf.argmax(score + edges, axis=-1, output_type=tf.int32)

    elems = (scores[:-1], mask[1:]) + ((transition,) if per_step else ())
    earlier = tf.scan(step, elems, initializer=last, reverse=True)  # [T-1, B]
    path = tf.concat([earlier, last[None]], axis=0)
    return tf.where(mask, path, tf.zeros_like(path))[:steps]


def pairwise_marginals(log_filtered: tf.Tensor, transition: tf.Tensor,
                       unary: tf.Tensor) -> tf.Tensor:
    """p(z_{t-1} = i, z_t = j | x) = p(z_t = j | x) softmax_i(log α_{t-1}[i] + θ_t[i, j]).

    Args:
      log_filtered: [T, B, K] log α_t of a sum-semiring forward pass.
      transition: [K, K], [B, K, K] or per step [T-1, B, K, K] log-potentials.
      unary: [T, B, K] posterior marginals p(z_t | x) (zero at padded positions).

    Returns:
      [T-1, B, K, K] pairwise marginals (zero where z_t is padding).
    """
    if transition.shape.rank == 2:
        transition = transition[None, None]
    elif transition.shape.rank == 3:
        transition = transition[None]
    backward = tf.nn.softmax(log_filtered[:-1, :, :, None] + transition, axis=2)
    # A column with no reachable predecessor has unary probability 0 (and a nan softmax).
    return tf.math.multiply_no_nan(backward, unary[1:, :, None, :])

