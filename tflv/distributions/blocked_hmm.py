"""An HMM whose words are emitted by blocks of states: exact inference at (K/M)² per step.

Blocked emissions (Chiu & Rush 2020, §3): the K states are partitioned into M blocks of
S = K/M states (block b holds the states b·S .. b·S + S - 1) and the vocabulary into M word
sets; word w is emitted only by the states of its block b(w),

    p(x_t = w | z_t = k) = 0   unless   ⌊k / S⌋ = b(w).

So at step t only the S states of block b(x_t) can be occupied, and the forward recursion

    α_t[j] = e_t[j] + log Σ_i exp(α_{t-1}[i] + A[b(x_{t-1})·S + i, b(x_t)·S + j]),   i, j < S,

touches only the [S, S] sub-block of the transition log-probs A [K, K] between the blocks of
consecutive words: (K/M)² per step instead of K². The result is exactly the dense HMM's
log p(x) with emission log-prob -inf outside the word's block (`tflv.distributions.HMM`).

* `BlockedHMM.log_prob` = log Z = log p(x) (or log Σ_z exp score(z) for unnormalised scores),
  in log space: each step shifts α by its maximum and each transition row by its maximum
  before one batched [B, 1, S] × [B, S, S] matmul of their exponentials, so float32 neither
  underflows nor overflows however long the sequence.
* `BlockedHMM.posterior` = log Z and the marginals p(z_t | x) [B, T, S] (over the S states of
  x_t's block; `states` maps them to global ids) and p(z_{t-1}, z_t | x) [B, T-1, S, S], as the
  gradient of log Z w.r.t. the emission scores and the gathered transition sub-blocks
  (Eisner 2016).
* `BlockedHMM.viterbi` = argmax_z p(z | x) as global state ids [B, T]: max-plus recursion over
  the same sub-blocks and a backtrace.
* `BlockedHMM.sample` draws word sequences by ancestral sampling: z_1 ~ π, x_t ~ E[z_t] (a slot
  of z_t's block), z_{t+1} ~ A[z_t], each log-probability divided by a temperature.

`WordBlocks` is the word → block assignment (block of each word and its slot among the block's
words), with `WordBlocks.by_frequency`, the round-robin assignment of frequency-ranked words
(rank r → block r mod M, so every block holds frequent and rare words alike), and the check that
every token id belongs to a block.

Masks: `mask` [B, T] (bool or 0/1, true for real tokens, a prefix per row). A padded step keeps
α and its block; padded rows give exactly the results of the unpadded sequences, with zero
marginals and state 0 at padding, and log Z = 0 for an empty row.

Speed: every method is plain TF that XLA compiles (`tf.function(jit_compile=True)`); blocked
vs dense training and evaluation speed and memory are in BENCHMARKS.md, "HMM language model:
blocked emissions". XLA drops `tf.debugging` assertions: validate token ids outside a
compiled step.

Shapes: the parameters are unbatched (initial [K], transition [K, K]) and the sequences a
batch [B, T]; emission scores arrive per position, e_t [B, T, S] = log p(x_t | z_t = b(x_t)·S
+ s), e.g. from `WordBlocks.token_scores`.

#### Example

```python
blocks = tflv.distributions.WordBlocks.by_frequency(counts, num_blocks=4)   # counts [V]
hmm = tflv.distributions.BlockedHMM(initial_log_probs,      # [K]
                                    transition_log_probs,   # [K, K]
                                    num_blocks=4)
emission = ...                                             # [M, S, W] log p(word slot | state)
scores, block_ids = blocks.token_scores(emission, x)       # [B, T, S], [B, T]
log_px = hmm.log_prob(scores, block_ids, mask)             # [B]
path = hmm.viterbi(scores, block_ids, mask)                # int32 [B, T], global state ids
```

#### References

Chiu, J. T. & Rush, A. M. (2020). Scaling hidden Markov language models. EMNLP
(arXiv:2011.04640), §3 "blocked emissions".

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in speech
recognition. Proceedings of the IEEE 77(2).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf


class BlockedPosterior(NamedTuple):
    """log_prob [B]; unary p(z_t = states[b, t, s] | x) [B, T, S]; pairwise [B, T-1, S, S]
    (entry [b, t-1, i, j]: z_{t-1} = states[b, t-1, i], z_t = states[b, t, j]); states [B, T, S]
    the global state ids of each position's block."""

    log_prob: tf.Tensor
    unary: tf.Tensor
    pairwise: tf.Tensor
    states: tf.Tensor


class WordBlocks:
    """The word → block assignment of a blocked HMM.

    Args:
      word_blocks: int [V], the block b(w) ∈ [0, M) of every word id w.
      num_blocks: M.

    Attributes: `block_of` [V], `slot_of` [V] (the position of w among its block's words, in
    increasing word id), `block_words` [M, W] (the words of each block, padded with -1 to
    W = the largest block's size), `num_words` [M].
    """

    def __init__(self, word_blocks, num_blocks: int):
        word_blocks = np.asarray(word_blocks)
        if word_blocks.ndim != 1 or not np.issubdtype(word_blocks.dtype, np.integer):
            raise ValueError(f"word_blocks must be a 1-D integer array [V], got dtype "
                             f"{word_blocks.dtype} shape {word_blocks.shape}")
        if not isinstance(num_blocks, (int, np.integer)) or num_blocks < 1:
            raise ValueError(f"num_blocks must be a positive integer, got {num_blocks!r}")
        bad = np.flatnonzero((word_blocks < 0) | (word_blocks >= num_blocks))
        if bad.size:
            raise ValueError(f"word id {bad[0]} is assigned to block {word_blocks[bad[0]]}, "
                             f"outside the {num_blocks} blocks [0, {num_blocks})")
        self.num_blocks = int(num_blocks)
        self.vocab_size = len(word_blocks)
        self.block_of = word_blocks.astype(np.int32)
        self.num_words = np.bincount(word_blocks, minlength=num_blocks).astype(np.int32)
        empty = np.flatnonzero(self.num_words == 0)
        if empty.size:
            raise ValueError(f"block {empty[0]} has no words ({self.vocab_size} words for "
                             f"{num_blocks} blocks): every block must emit at least one word")
        order = np.argsort(word_blocks, kind="stable")
        starts = np.concatenate([[0], np.cumsum(self.num_words)[:-1]])
        self.slot_of = np.empty(self.vocab_size, np.int32)
        self.slot_of[order] = np.arange(self.vocab_size) - np.repeat(starts, self.num_words)
        self.block_words = np.full((num_blocks, int(self.num_words.max())), -1, np.int32)
        self.block_words[self.block_of, self.slot_of] = np.arange(self.vocab_size)

    @classmethod
    def by_frequency(cls, counts, num_blocks: int) -> "WordBlocks":
        """Round-robin over words sorted by decreasing count (ties by id): rank r → block r mod
        M, so each block gets a share of the frequent words and of the rare ones."""
        counts = np.asarray(counts)
        rank = np.empty(len(counts), np.int64)
        rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
        return cls(rank % num_blocks, num_blocks)

    def lookup(self, x, mask=None) -> tuple[tf.Tensor, tf.Tensor]:
        """(block, slot) int32 [B, T] of the tokens x [B, T]; an id outside [0, V) (at a real
        position) raises InvalidArgumentError naming it. Padded positions map to block 0."""
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_integer:
            raise TypeError(f"token ids x must be integers, got dtype {x.dtype}")
        x = tf.cast(x, tf.int32)
        real = tf.ones_like(x, tf.bool) if mask is None else tf.cast(mask, tf.bool)
        outside = real & ((x < 0) | (x >= self.vocab_size))
        with tf.control_dependencies([tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(outside)),
                [f"token ids must be in [0, {self.vocab_size}) (every word of the block "
                 "assignment); got a word outside every block, first at [row, position]:",
                 tf.where(outside)[:1], "id", tf.boolean_mask(x, outside)[:1]])]):
            x = tf.where(real, x, tf.zeros_like(x))
        return (tf.gather(self.block_of, x), tf.gather(self.slot_of, x))

    def token_scores(self, emission_log_probs, x, mask=None) -> tuple[tf.Tensor, tf.Tensor]:
        """Emission scores e [B, T, S] and blocks [B, T] of tokens x [B, T], from
        emission_log_probs [M, S, W], whose entry [b, s, j] is
        log p(block_words[b, j] | state b·S + s)."""
        emission_log_probs = tf.convert_to_tensor(emission_log_probs)
        if (emission_log_probs.shape.rank != 3
                or emission_log_probs.shape[0] not in (None, self.num_blocks)):
            raise ValueError(f"emission_log_probs must have shape [M={self.num_blocks}, S, W], "
                             f"got {emission_log_probs.shape}")
        block, slot = self.lookup(x, mask)
        per_block = tf.transpose(emission_log_probs, [0, 2, 1])  # [M, W, S]
        return tf.gather_nd(per_block, tf.stack([block, slot], -1)), block


def _as_mask(mask, like: tf.Tensor) -> tf.Tensor:
    if mask is None:
        return tf.ones(tf.shape(like)[:2], tf.bool)
    mask = tf.convert_to_tensor(mask)
    if mask.shape.rank != 2:
        raise ValueError(f"mask must have shape [B, T], got {mask.shape}")
    return tf.cast(mask, tf.bool)


class BlockedHMM:
    """A blocked-emission HMM over K states in M blocks (module docstring).

    Args:
      initial_log_probs: [K] log p(z_1) (or initial scores).
      transition_log_probs: [K, K] log p(z_t | z_{t-1}) (rows: from-state).
      num_blocks: M; K must be a multiple of M.
    """

    def __init__(self, initial_log_probs, transition_log_probs, num_blocks: int):
        self.initial = tf.convert_to_tensor(initial_log_probs)
        self.dtype = self.initial.dtype
        self.transition = tf.convert_to_tensor(transition_log_probs, self.dtype)
        k = self.initial.shape[-1]
        if self.initial.shape.rank != 1 or k is None:
            raise ValueError(f"initial_log_probs must have static shape [K], got "
                             f"{self.initial.shape}")
        if self.transition.shape != (k, k):
            raise ValueError(f"transition_log_probs must have shape [K, K] = [{k}, {k}], got "
                             f"{self.transition.shape}")
        if not isinstance(num_blocks, (int, np.integer)) or num_blocks < 1 or k % num_blocks:
            raise ValueError(f"num_blocks must be a positive divisor of K={k}, got {num_blocks!r}")
        self.num_states, self.num_blocks = k, int(num_blocks)
        self.block_size = k // self.num_blocks

    def _check(self, emission_scores, blocks, mask):
        emission_scores = tf.convert_to_tensor(emission_scores, self.dtype)
        if emission_scores.shape.rank != 3 or emission_scores.shape[-1] != self.block_size:
            raise ValueError(f"emission_scores must have shape [B, T, S={self.block_size}], got "
                             f"{emission_scores.shape}")
        blocks = tf.cast(blocks, tf.int32)
        mask = _as_mask(mask, emission_scores)
        bad = mask & ((blocks < 0) | (blocks >= self.num_blocks))
        with tf.control_dependencies([tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(bad)),
                [f"blocks must be in [0, {self.num_blocks}); first bad [row, position]:",
                 tf.where(bad)[:1]])]):
            blocks = tf.where(mask, blocks, tf.zeros_like(blocks))
        return emission_scores, blocks, mask

    def _step_transitions(self, blocks, mask) -> tf.Tensor:
        """[T-1, B, S, S]: the sub-block from the block of the last real token to x_t's block
        (a padded step's entry is unused)."""
        m, s = self.num_blocks, self.block_size
        by_pair = tf.transpose(tf.reshape(self.transition, [m, s, m, s]), [0, 2, 1, 3])
        # The block in force before step t: the block of the last real token (prefix masks).
        prev = blocks[:, :-1]
        return tf.transpose(tf.gather_nd(by_pair, tf.stack([prev, blocks[:, 1:]], -1)),
                            [1, 0, 2, 3])

    def _initial(self, emission_scores, blocks):
        s = self.block_size
        states = blocks[:, :1] * s + tf.range(s)[None, :]  # [B, S]
        return tf.gather(self.initial, states) + emission_scores[:, 0]

    def _log_z(self, emission_scores, blocks, mask, transitions):
        alpha0 = self._initial(emission_scores, blocks)
        empty = tf.one_hot(tf.zeros_like(blocks[:, 0]), self.block_size, 0.0, -np.inf,
                           dtype=self.dtype)
        alpha0 = tf.where(mask[:, :1], alpha0, empty)

        def step(alpha, elems):
            trans, emit, real = elems
            row_max = tf.stop_gradient(tf.reduce_max(trans, -1))  # [B, S]
            row_max = tf.where(tf.math.is_finite(row_max), row_max, tf.zeros_like(row_max))
            shifted = alpha + row_max
            top = tf.stop_gradient(tf.reduce_max(shifted, -1, keepdims=True))
            top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))
            probs = tf.exp(shifted - top)[:, None, :]
            new = (tf.math.log(tf.matmul(probs, tf.exp(trans - row_max[..., None]))[:, 0])
                   + top + emit)
            return tf.where(real[:, None], new, alpha)

        alpha = tf.foldl(step, (transitions, tf.transpose(emission_scores[:, 1:], [1, 0, 2]),
                                tf.transpose(mask[:, 1:])), initializer=alpha0)
        return tf.reduce_logsumexp(alpha, -1)

    def log_prob(self, emission_scores, blocks, mask=None) -> tf.Tensor:
        """log Z [B] of emission_scores [B, T, S] at blocks [B, T] (module docstring)."""
        emission_scores, blocks, mask = self._check(emission_scores, blocks, mask)
        return self._log_z(emission_scores, blocks, mask, self._step_transitions(blocks, mask))

    def posterior(self, emission_scores, blocks, mask=None) -> BlockedPosterior:
        """log Z and the posterior marginals by autodiff of log Z (module docstring)."""
        emission_scores, blocks, mask = self._check(emission_scores, blocks, mask)
        transitions = self._step_transitions(blocks, mask)
        with tf.GradientTape() as tape:
            tape.watch([emission_scores, transitions])
            log_z = self._log_z(emission_scores, blocks, mask, transitions)
            total = tf.reduce_sum(log_z)
        unary, pairwise = tape.gradient(total, [emission_scores, transitions])
        real = tf.cast(mask, self.dtype)
        unary = unary * real[..., None]
        pairwise = tf.transpose(pairwise, [1, 0, 2, 3]) * real[:, 1:, None, None]
        states = blocks[..., None] * self.block_size + tf.range(self.block_size)
        return BlockedPosterior(log_z, unary, pairwise, states)

    def dense_unary(self, posterior: BlockedPosterior) -> tf.Tensor:
        """The unary marginals scattered to all K states, [B, T, K] (zero outside the block)."""
        return tf.reduce_sum(posterior.unary[..., None]
                             * tf.one_hot(posterior.states, self.num_states, dtype=self.dtype),
                             -2)

    def viterbi(self, emission_scores, blocks, mask=None) -> tf.Tensor:
        """argmax_z p(z | x): global state ids int32 [B, T] (0 at padding)."""
        emission_scores, blocks, mask = self._check(emission_scores, blocks, mask)
        transitions = self._step_transitions(blocks, mask)
        delta0 = self._initial(emission_scores, blocks)
        identity = tf.broadcast_to(tf.range(self.block_size), tf.shape(delta0))

        def step(carry, elems):
            delta, _ = carry
            trans, emit, real = elems
            scores = delta[..., None] + trans  # [B, S_from, S_to]
            new = tf.reduce_max(scores, 1) + emit
            back = tf.argmax(scores, 1, output_type=tf.int32)
            return (tf.where(real[:, None], new, delta), tf.where(real[:, None], back, identity))

        deltas, backs = tf.scan(step, (transitions, tf.transpose(emission_scores[:, 1:], [1, 0, 2]),
                                       tf.transpose(mask[:, 1:])),
                                initializer=(delta0, identity))
        final = tf.concat([delta0[None], deltas], 0)[-1]
        last = tf.argmax(final, -1, output_type=tf.int32)  # [B]

        def back_step(z, back):
            return tf.gather(back, z, batch_dims=1)

        earlier = tf.scan(back_step, backs, initializer=last, reverse=True)  # [T-1, B]
        local = tf.transpose(tf.concat([earlier, last[None]], 0))  # [B, T]
        return tf.where(mask, blocks * self.block_size + local, tf.zeros_like(local))

    def sample(self, emission_log_probs, blocks: WordBlocks, n, num_steps, seed,
               temperature=1.0) -> tf.Tensor:
        """Word ids int32 [n, num_steps] by ancestral sampling (module docstring), from a
        stateless seed int [2]; emission_log_probs [M, S, W] as in `WordBlocks.token_scores`."""
        emission = tf.convert_to_tensor(emission_log_probs, self.dtype)
        temperature = tf.cast(temperature, self.dtype)
        words = tf.constant(blocks.block_words)
        seed = tf.cast(seed, tf.int32)

        def draw(logits, step, part):
            step_seed = tf.random.experimental.stateless_fold_in(
                tf.random.experimental.stateless_fold_in(seed, step), part)
            return tf.random.stateless_categorical(logits / temperature, 1, step_seed,
                                                   dtype=tf.int32)[:, 0]

        z = draw(tf.broadcast_to(self.initial, [n, self.num_states]), 0, 0)

        def body(t, z, out):
            block, local = z // self.block_size, z % self.block_size
            slot = draw(tf.gather_nd(emission, tf.stack([block, local], -1)), t, 1)
            out = out.write(t, tf.gather_nd(words, tf.stack([block, slot], -1)))
            return t + 1, draw(tf.gather(self.transition, z), t + 1, 0), out

        _, _, out = tf.while_loop(lambda t, *_: t < num_steps, body,
                                  (0, z, tf.TensorArray(tf.int32, size=num_steps)))
        return tf.transpose(tf.reshape(out.stack(), [num_steps, n]))
