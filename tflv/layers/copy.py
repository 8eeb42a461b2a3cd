"""Copy attention: a per-token switch between generating a word and copying a source word.

With a binary latent switch c_t ~ Bernoulli(g_t), g_t = σ(gate(·)), the next-word distribution
marginalises the switch exactly (Gu et al. 2016; Gulcehre et al. 2016):

    p(y_t = v) = (1 − g_t) p_gen(v) + g_t Σ_s α_ts [x̂_s = v],

where p_gen is the decoder's softmax over the target vocabulary (size V), α_t the attention
distribution over source positions, and x̂_s the *extended* id of source word x_s: its target id
if the word is in the target vocabulary, else V + (first position of that word in the source
row). The extended vocabulary of a batch therefore has V + S ids, and source words outside the
target vocabulary can be produced by copying. The posterior of the switch,
p(c_t = 1 | y_t) = g_t p_copy(y_t) / p(y_t), gives the share of tokens explained by copying.

The *joint* copy (Gu et al. 2016's CopyNet; Wiseman, Shieber & Rush 2018's neural templates)
has no switch: the word logits l_t [V] and the raw attention scores e_t [S] share one softmax,

    p(y_t = v) = (exp l_tv + Σ_s exp e_ts [x̂_s = v]) / (Σ_w exp l_tw + Σ_s exp e_ts),

so that the copy mass follows how well some source word fits (a decoder whose query matches
no record copies little), where the switch's α_t always sums to one over the row. Both are
*parts* — log-probabilities of generating v, `word_part` [.., V], and of copying position s,
`copy_part` [.., S], whose exponentials sum to one — combined by `part_log_prob` (given
targets) and `extended_log_distribution` (the whole extended vocabulary). `gate_parts` and
`joint_parts` make them, the word part as a shift [..] of log p_gen or of the logits: a caller
that needs only a few words' entries need not build the [.., V] sum.

#### References
- Gu, Lu, Li & Li (2016). Incorporating Copying Mechanism in Sequence-to-Sequence Learning. ACL.
- Gulcehre, Ahn, Nallapati, Zhou & Bengio (2016). Pointing the Unknown Words. ACL.
- See, Liu & Manning (2017). Get To The Point: Summarization with Pointer-Generator Networks
  (the extended vocabulary).
"""
from __future__ import annotations

import tensorflow as tf

# log of "no such source word": finite, so that gradients stay finite.
NO_MATCH = -1e9


def source_to_target_ids(source_tokens: list[str], target_index: dict[str, int]) -> tf.Tensor:
    """int32 [V_src]: the target id of each source vocabulary word, -1 where it has none."""
    return tf.constant([target_index.get(token, -1) for token in source_tokens], tf.int32)


def extended_source_ids(source: tf.Tensor, source_to_target: tf.Tensor,
                        target_vocab_size: int) -> tf.Tensor:
    """x̂: source int [B, S] → extended ids int32 [B, S] in [0, V + S)."""
    source = tf.cast(source, tf.int32)
    target_ids = tf.gather(source_to_target, source)  # [B, S], -1: not in the target vocabulary
    same = tf.equal(source[:, :, None], source[:, None, :])  # [B, S, S]
    first = tf.argmax(tf.cast(same, tf.int32), axis=-1, output_type=tf.int32)  # [B, S]
    return tf.where(target_ids >= 0, target_ids, target_vocab_size + first)


def copy_log_prob(targets: tf.Tensor, generate_log_probs: tf.Tensor, log_alignment: tf.Tensor,
                  extended_ids: tf.Tensor, gate_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """log p(y_t) of given targets and log p(c_t = 1 | y_t), in log space.

    Args:
      targets: int [B, T] target ids (extended ids allowed).
      generate_log_probs: [B, T, V] log p_gen.
      log_alignment: [B, T, S] log α.
      extended_ids: int [B, S] x̂.
      gate_logits: [B, T] logit of g_t.

    Returns:
      `(log_prob [B, T], log_copy_posterior [B, T])`.
    """
    targets = tf.cast(targets, tf.int32)
    vocab = tf.shape(generate_log_probs)[-1]
    in_vocab = targets < vocab
    generated = tf.gather(generate_log_probs, tf.where(in_vocab, targets, 0), batch_dims=2)
    word_shift, copy_part = gate_parts(log_alignment, gate_logits)
    return part_log_prob(targets, tf.where(in_vocab, generated, NO_MATCH) + word_shift,
                         copy_part, extended_ids)


def gate_parts(log_alignment: tf.Tensor, gate_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The switch's parts: (log(1 − g) [B, T], added to log p_gen to give `word_part`;
    `copy_part` log g + log α [B, T, S])."""
    return (tf.math.log_sigmoid(-gate_logits),
            tf.math.log_sigmoid(gate_logits)[..., None] + log_alignment)


def joint_parts(word_logits: tf.Tensor, copy_scores: tf.Tensor,
                source_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The joint softmax's parts (module docstring) from word logits [B, T, V] and raw copy
    scores [B, T, S] over the positions `source_mask` bool [B, S] allows: (−log Z [B, T],
    added to the word logits to give `word_part`; `copy_part` e − log Z [B, T, S], masked
    positions `NO_MATCH`)."""
    copy_scores = tf.where(tf.cast(source_mask, tf.bool)[:, None, :], copy_scores, NO_MATCH)
    normaliser = tf.reduce_logsumexp(tf.concat([word_logits, copy_scores], axis=-1), axis=-1)
    return -normaliser, copy_scores - normaliser[..., None]


def part_log_prob(targets: tf.Tensor, generated: tf.Tensor, copy_part: tf.Tensor,
                  extended_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """log p(y_t) of targets int [B, T] from their `word_part` entries [B, T] (`NO_MATCH` for
    ids outside the vocabulary) and `copy_part` [B, T, S]: the log-sum of generating y_t and
    of copying every position holding it; and log p(copied | y_t)."""
    targets = tf.cast(targets, tf.int32)
    match = tf.equal(extended_ids[:, None, :], targets[:, :, None])  # [B, T, S]
    copied = tf.reduce_logsumexp(tf.where(match, copy_part, NO_MATCH), axis=-1)  # [B, T]
    log_prob = tf.reduce_logsumexp(tf.stack([generated, copied]), axis=0)
    return log_prob, copied - log_prob


def extended_log_distribution(word_part: tf.Tensor, copy_part: tf.Tensor,
                              extended_ids: tf.Tensor) -> tf.Tensor:
    """log p over the extended vocabulary [B, T, V + S] from `word_part` [B, T, V] and
    `copy_part` [B, T, S]: each position's copy mass added to its extended id."""
    source_length = tf.shape(extended_ids)[1]
    generate = tf.pad(tf.exp(word_part), [[0, 0], [0, 0], [0, source_length]])
    scatter = tf.one_hot(extended_ids, tf.shape(generate)[-1], dtype=generate.dtype)  # [B,S,V+S]
    return tf.math.log(generate + tf.einsum("bts,bsv->btv", tf.exp(copy_part), scatter))


def copy_distribution(generate_log_probs: tf.Tensor, log_alignment: tf.Tensor,
                      extended_ids: tf.Tensor, gate_logits: tf.Tensor) -> tf.Tensor:
    """The whole next-word distribution over the extended vocabulary, log [B, T, V + S].

    Ids that neither the vocabulary nor the source row provides get log 0 = -inf; use it for
    decoding, and `copy_log_prob` for gradients.
    """
    word_shift, copy_part = gate_parts(log_alignment, gate_logits)
    return extended_log_distribution(generate_log_probs + word_shift[..., None], copy_part,
                                     extended_ids)
