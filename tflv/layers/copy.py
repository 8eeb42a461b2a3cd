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
    return mixed_log_prob(targets, tf.where(in_vocab, generated, NO_MATCH), log_alignment,
                          extended_ids, gate_logits)


def mixed_log_prob(targets: tf.Tensor, generated: tf.Tensor, log_alignment: tf.Tensor,
                   extended_ids: tf.Tensor, gate_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`copy_log_prob` from the targets' own log p_gen(y_t) [B, T] (`NO_MATCH` for extended ids
    outside the vocabulary), for a caller that computes those without the whole [B, T, V]
    log-softmax (`tflv.models.neural_template`: the target's logit minus the log normaliser)."""
    targets = tf.cast(targets, tf.int32)
    match = tf.equal(extended_ids[:, None, :], targets[:, :, None])  # [B, T, S]
    copied = tf.reduce_logsumexp(tf.where(match, log_alignment, NO_MATCH), axis=-1)  # [B, T]
    log_generate_part = tf.math.log_sigmoid(-gate_logits) + generated
    log_copy_part = tf.math.log_sigmoid(gate_logits) + copied
    log_prob = tf.reduce_logsumexp(tf.stack([log_generate_part, log_copy_part]), axis=0)
    return log_prob, log_copy_part - log_prob


def copy_distribution(generate_log_probs: tf.Tensor, log_alignment: tf.Tensor,
                      extended_ids: tf.Tensor, gate_logits: tf.Tensor) -> tf.Tensor:
    """The whole next-word distribution over the extended vocabulary, log [B, T, V + S].

    Ids that neither the vocabulary nor the source row provides get log 0 = -inf; use it for
    decoding, and `copy_log_prob` for gradients.
    """
    source_length = tf.shape(extended_ids)[1]
    generate = tf.pad(tf.exp(generate_log_probs), [[0, 0], [0, 0], [0, source_length]])
    scatter = tf.one_hot(extended_ids, tf.shape(generate)[-1], dtype=generate.dtype)  # [B,S,V+S]
    copy = tf.einsum("bts,bsv->btv", tf.exp(log_alignment), scatter)
    gate = tf.sigmoid(gate_logits)[..., None]  # [B, T, 1]
    return tf.math.log((1.0 - gate) * generate + gate * copy)
