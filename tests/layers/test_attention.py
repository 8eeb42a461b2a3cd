"""Attention and copy layers: conformance, float64 references, normalisation over the (extended)
vocabulary, and the exact switch marginal against enumerating the switch."""
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_test_case import run_layer_test
from tflv.layers import copy as copy_lib
from tflv.layers.attention import Attention, soft_context

RNG = np.random.default_rng(0)
QUERY = tf.constant(RNG.normal(size=(2, 3, 4)), tf.float32)
MEMORY = tf.constant(RNG.normal(size=(2, 5, 6)), tf.float32)
MASK = tf.constant([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], tf.float32)


@pytest.mark.parametrize("score", ["additive", "bilinear"])
def test_conformance(score):
    run_layer_test(Attention, dict(units=7, score=score), (QUERY, MEMORY, MASK),
                   expected_output_shape=(2, 3, 5))


@pytest.mark.parametrize("score", ["additive", "bilinear"])
def test_matches_a_float64_reference(score):
    layer = Attention(units=7, score=score)
    log_alignment = layer((QUERY, MEMORY, MASK)).numpy()
    q, m = QUERY.numpy().astype(np.float64), MEMORY.numpy().astype(np.float64)
    if score == "additive":
        wq, wm, bm, v = (w.numpy().astype(np.float64) for w in
                         (layer.query_dense.kernel, layer.memory_dense.kernel,
                          layer.memory_dense.bias, layer.vector.kernel))
        scores = np.tanh((q @ wq)[:, :, None] + (m @ wm + bm)[:, None])[..., :] @ v[:, 0]
    else:
        scores = np.einsum("btq,qm,bsm->bts", q, layer.kernel.numpy().astype(np.float64), m)
    for b in range(2):
        n = int(MASK[b].numpy().sum())
        row = scores[b, :, :n]
        expected = row - np.log(np.exp(row).sum(-1, keepdims=True))
        np.testing.assert_allclose(log_alignment[b, :, :n], expected, rtol=1e-4, atol=1e-5)
        assert np.all(np.exp(log_alignment[b, :, n:]) == 0.0)  # padding never attended


def test_soft_context_is_the_expected_memory():
    log_alignment = Attention(units=3)((QUERY, MEMORY, MASK))
    alpha = np.exp(log_alignment.numpy().astype(np.float64))
    expected = np.einsum("bts,bsd->btd", alpha, MEMORY.numpy())
    np.testing.assert_allclose(soft_context(log_alignment, MEMORY), expected, rtol=1e-5,
                               atol=1e-6)


def test_unknown_score_is_named():
    with pytest.raises(ValueError, match="score must be one of"):
        Attention(score="dot")


# -- copy ------------------------------------------------------------------------------------

V, SOURCE_VOCAB = 6, ["<pad>", "<unk>", "<bos>", "<eos>", "haus", "kafka", "oslo"]
TARGET_INDEX = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, "haus": 4, "katze": 5}


def test_extended_ids_copy_source_words_outside_the_target_vocabulary():
    table = copy_lib.source_to_target_ids(SOURCE_VOCAB, TARGET_INDEX)
    np.testing.assert_array_equal(table.numpy(), [0, 1, 2, 3, 4, -1, -1])
    source = tf.constant([[5, 4, 6, 5], [6, 6, 4, 0]])  # kafka haus oslo kafka | oslo oslo haus
    ids = copy_lib.extended_source_ids(source, table, V).numpy()
    # in-vocabulary words keep their target id; an OOV word is V + its first position
    np.testing.assert_array_equal(ids, [[V + 0, 4, V + 2, V + 0], [V + 0, V + 0, 4, 0]])


def copy_inputs(seed=0, b=2, t=3, s=4):
    rng = np.random.default_rng(seed)
    generate = tf.nn.log_softmax(tf.constant(rng.normal(size=(b, t, V)), tf.float32))
    alignment = tf.nn.log_softmax(tf.constant(rng.normal(size=(b, t, s)), tf.float32))
    extended = tf.constant([[V + 0, 4, V + 2, V + 0], [5, 5, 1, V + 3]], tf.int32)
    gate = tf.constant(rng.normal(size=(b, t)), tf.float32)
    return generate, alignment, extended, gate


def test_copy_distribution_sums_to_one_over_the_extended_vocabulary():
    generate, alignment, extended, gate = copy_inputs()
    log_probs = copy_lib.copy_distribution(generate, alignment, extended, gate)
    assert log_probs.shape == (2, 3, V + 4)
    np.testing.assert_allclose(tf.reduce_sum(tf.exp(log_probs), -1), 1.0, rtol=1e-5)


def test_copy_log_prob_enumerates_the_switch_and_matches_the_distribution():
    generate, alignment, extended, gate = copy_inputs(seed=1)
    full = copy_lib.copy_distribution(generate, alignment, extended, gate).numpy()
    g64 = 1 / (1 + np.exp(-gate.numpy().astype(np.float64)))
    p_gen = np.exp(generate.numpy().astype(np.float64))
    alpha = np.exp(alignment.numpy().astype(np.float64))
    for y in range(V + 4):
        targets = tf.fill([2, 3], y)
        log_prob, log_post = copy_lib.copy_log_prob(targets, generate, alignment, extended, gate)
        # sum over the switch c ∈ {generate, copy}, and over positions s holding y
        gen = p_gen[..., y] if y < V else 0.0
        cop = (alpha * (extended.numpy()[:, None, :] == y)).sum(-1)
        joint_copy = g64 * cop
        expected = (1 - g64) * gen + joint_copy  # [B, T]
        some = expected > 0  # ids neither generated nor in the row's source have probability 0
        assert np.all(np.isneginf(full[..., y][~some])) and np.all(log_prob.numpy()[~some] < -1e8)
        np.testing.assert_allclose(np.exp(log_prob)[some], expected[some], rtol=1e-5)
        np.testing.assert_allclose(full[..., y][some], np.log(expected[some]), rtol=1e-5)
        np.testing.assert_allclose(np.exp(log_post)[some], (joint_copy / np.where(
            some, expected, 1))[some], rtol=1e-4, atol=1e-7)


def test_joint_copy_is_one_softmax_over_words_and_allowed_positions():
    """`joint_parts` (CopyNet, Wiseman et al.): p(v) = (exp l_v + Σ_s exp e_s [x̂_s = v]) / Z with
    Z over the V logits and the unmasked scores, against float64; masked positions get no
    mass; the whole distribution sums to one; `part_log_prob` agrees with it."""
    rng = np.random.default_rng(2)
    logits = tf.constant(rng.normal(size=(2, 3, V)), tf.float32)
    scores = tf.constant(rng.normal(size=(2, 3, 4)) * 2, tf.float32)
    extended = tf.constant([[V + 0, 4, V + 2, V + 0], [5, 5, 1, V + 3]], tf.int32)
    allowed = np.array([[True, True, False, True], [True, True, True, False]])
    shift, copy_part = copy_lib.joint_parts(logits, scores, tf.constant(allowed))
    full = copy_lib.extended_log_distribution(logits + shift[..., None], copy_part,
                                              extended).numpy()
    np.testing.assert_allclose(np.exp(full).sum(-1), 1.0, rtol=1e-5)
    l64, e64 = logits.numpy().astype(np.float64), scores.numpy().astype(np.float64)
    e64 = np.where(allowed[:, None, :], np.exp(e64), 0.0)
    z = np.exp(l64).sum(-1) + e64.sum(-1)  # [B, T]
    for y in range(V + 4):
        gen = np.exp(l64[..., y]) if y < V else 0.0
        expected = (gen + (e64 * (extended.numpy()[:, None, :] == y)).sum(-1)) / z
        some = expected > 0
        log_prob, _ = copy_lib.part_log_prob(
            tf.fill([2, 3], y), (logits[..., y] if y < V else copy_lib.NO_MATCH) + shift,
            copy_part, extended)
        np.testing.assert_allclose(np.exp(full[..., y])[some], expected[some], rtol=1e-5)
        np.testing.assert_allclose(np.exp(log_prob.numpy())[some], expected[some], rtol=1e-5)
        assert np.all(np.exp(full[..., y])[~some] < 1e-30)
