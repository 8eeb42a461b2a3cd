"""EncoderDecoder: every attention mode's likelihood against brute force, the decoding step against
the parallel (teacher-forced) pass, the ELBO against its enumeration, BLEU's closed form, and one
end-to-end `trainers.train` run on Multi30k."""
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tflv.bleu import corpus_bleu
from tflv.models.seq2seq import EncoderDecoder
from tflv.models.unigram import log_frequencies, token_counts

SRC_V, TGT_V = 9, 8
# source words 7 and 8 have no target id: copying them needs the extended vocabulary
SOURCE_TO_TARGET = [0, 1, 2, 3, 4, 5, 6, -1, -1]
BATCH = {
    "source": tf.constant([[4, 7, 5, 7], [8, 6, 0, 0]]),
    "source_mask": tf.constant([[1., 1., 1., 1.], [1., 1., 0., 0.]]),
    "target_inputs": tf.constant([[2, 5, 4], [2, 6, 0]]),
    "target_targets": tf.constant([[5, 4, 3], [6, 3, 0]]),
    "target_mask": tf.constant([[1., 1., 1.], [1., 1., 0.]]),
}


def make(attention, **kwargs):
    tf.keras.utils.set_random_seed(1)
    model = EncoderDecoder(SRC_V, TGT_V, attention=attention, embed_dim=5, hidden_dim=6,
                           source_to_target=SOURCE_TO_TARGET if attention == "copy" else None,
                           max_decode_length=5, **kwargs)
    model.objective(BATCH)
    return model


def pieces(model):
    """Teacher-forced h, the state, per-position log p(y_t | z_t = s) [B,T,S] and log α [B,T,S]."""
    state = model.encode(BATCH["source"], BATCH["source_mask"])
    h, _, _ = model.decode_states(BATCH["target_inputs"], state, BATCH["target_mask"])
    log_alignment = model.log_alignment(h, state).numpy().astype(np.float64)
    per_position = tf.nn.log_softmax(model.output_logits(
        h[:, :, None, :], state["memory"][:, None, :, :])).numpy().astype(np.float64)
    targets = BATCH["target_targets"].numpy()
    b, t, s = log_alignment.shape
    lik = np.array([[[per_position[i, j, k, targets[i, j]] for k in range(s)] for j in range(t)]
                    for i in range(b)])
    return h, state, lik, log_alignment


def test_latent_exact_marginal_equals_enumerating_every_alignment_sequence():
    model = make("latent_exact")
    nll = model.objective(BATCH).stats["nll"].numpy()
    _, _, lik, log_alignment = pieces(model)
    mask = BATCH["target_mask"].numpy()
    for b in range(2):
        t_len, s_len = int(mask[b].sum()), int(BATCH["source_mask"][b].numpy().sum())
        total = 0.0  # Σ over z_1..z_T ∈ [S]^T of Π_t α_t(z_t) p(y_t | z_t)
        for z in itertools.product(range(s_len), repeat=t_len):
            total += np.exp(sum(log_alignment[b, t, z[t]] + lik[b, t, z[t]]
                                for t in range(t_len)))
        np.testing.assert_allclose(-nll[b], np.log(total), rtol=1e-5)


def test_elbo_enumerated_is_a_lower_bound_and_the_estimate_is_unbiased():
    model = make("latent_elbo", num_samples=3)
    h, state, lik, log_prior = pieces(model)
    log_q = model.posterior_log_alignment(BATCH, state).numpy().astype(np.float64)
    q = np.exp(log_q)
    kl = np.where(q > 0, q * (log_q - log_prior), 0.0).sum(-1)
    exact_elbo = (q * lik).sum(-1) - kl  # [B, T], by enumerating z_t
    log_marginal = np.log((np.exp(log_prior) * np.exp(lik)).sum(-1))
    mask = BATCH["target_mask"].numpy() > 0
    assert np.all(exact_elbo[mask] <= log_marginal[mask] + 1e-6)
    targets = tf.cast(BATCH["target_targets"], tf.int32)
    draws = np.stack([model._token_elbo(h, state, BATCH, targets)[0].numpy()
                      for _ in range(50)])  # [N, B, T]
    mean, stderr = draws.mean(0), draws.std(0) / np.sqrt(len(draws)) + 1e-6
    assert np.all(np.abs(mean - exact_elbo)[mask] < 5 * stderr[mask]), (mean, exact_elbo)
    # evaluation reports the exact marginal; training minimises the (estimated) negative bound
    np.testing.assert_allclose(-model.objective(BATCH).stats["nll"],
                               (log_marginal * mask).sum(-1), rtol=1e-5)
    train = model.objective(BATCH, training=True)
    np.testing.assert_allclose(train.loss, train.stats["nll"] / train.stats["tokens"], rtol=1e-6)


def test_soft_attention_likelihood_is_the_softmax_at_the_expected_memory():
    model = make("soft")
    h, state, _, log_alignment = pieces(model)
    context = np.einsum("bts,bsd->btd", np.exp(log_alignment), state["memory"].numpy())
    logits = model.output_logits(h, tf.constant(context, tf.float32)).numpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets, mask = BATCH["target_targets"].numpy(), BATCH["target_mask"].numpy()
    expected = -(np.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * mask).sum(-1)
    np.testing.assert_allclose(model.objective(BATCH).stats["nll"], expected, rtol=1e-5)


@pytest.mark.parametrize("attention", ["soft", "latent_exact", "copy"])
def test_decoding_step_equals_the_teacher_forced_pass(attention):
    model = make(attention)
    state = model.encode(BATCH["source"], BATCH["source_mask"])
    h, embedded, _ = model.decode_states(BATCH["target_inputs"], state)
    parallel = model.next_word_log_probs(h, embedded, state).numpy()
    for t in range(3):
        h_t, e_t, state = model.decode_states(BATCH["target_inputs"][:, t:t + 1], state)
        step = model.next_word_log_probs(h_t, e_t, state).numpy()[:, 0]
        np.testing.assert_allclose(step[0], parallel[0, t], rtol=1e-4, atol=1e-5)
    # every mode's next-word distribution is normalised (copy: over the V + S extended ids)
    np.testing.assert_allclose(np.exp(parallel).sum(-1), 1.0, rtol=1e-5)
    assert parallel.shape[-1] == TGT_V + (4 if attention == "copy" else 0)


def test_copy_gives_mass_to_source_words_outside_the_target_vocabulary():
    model = make("copy")
    state = model.encode(BATCH["source"], BATCH["source_mask"])
    h, embedded, _ = model.decode_states(BATCH["target_inputs"], state)
    probs = np.exp(model.next_word_log_probs(h, embedded, state).numpy())
    # row 0: word 7 (positions 1 and 3) is extended id V + 1; row 1: word 8 is V + 0
    assert np.all(probs[0, :, TGT_V + 1] > 0) and np.all(probs[1, :, TGT_V + 0] > 0)
    assert np.all(probs[0, :, TGT_V + 3] == 0)  # duplicate OOV shares the first position's id
    ids = model.translate(BATCH["source"], BATCH["source_mask"]).numpy()
    assert ids.shape == (2, 5) and ids.max() < TGT_V + 4


def test_beam_search_translation_with_beam_one_is_greedy():
    greedy_ids = make("soft").translate(BATCH["source"], BATCH["source_mask"])
    beam_ids = make("soft", beam_size=1 + 0).translate(BATCH["source"], BATCH["source_mask"])
    np.testing.assert_array_equal(greedy_ids, beam_ids)


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="attention must be one of"):
        EncoderDecoder(SRC_V, TGT_V, attention="hard")
    with pytest.raises(ValueError, match="source_to_target"):
        EncoderDecoder(SRC_V, TGT_V, attention="copy")
    with pytest.raises(ValueError, match="num_samples"):
        EncoderDecoder(SRC_V, TGT_V, attention="latent_elbo", num_samples=1)


def test_output_bias_starts_at_the_smoothed_log_unigram_frequencies():
    # masked-in targets of BATCH: 5, 4, 3, 6, 3 → counts c_3 = 2, c_4 = c_5 = c_6 = 1 of 5 tokens
    log_probs = log_frequencies(token_counts([BATCH], TGT_V, "target_targets", "target_mask"))
    counts = np.array([0, 0, 0, 2, 1, 1, 1, 0]) + 0.5
    np.testing.assert_allclose(log_probs, np.log(counts / 9.0), rtol=1e-12)
    model = make("soft", output_bias=log_probs)
    np.testing.assert_allclose(model.projection.bias.numpy(), log_probs, rtol=1e-6)
    with pytest.raises(ValueError, match="output_bias has 3 entries"):
        EncoderDecoder(SRC_V, TGT_V, output_bias=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"id 9, outside the vocabulary \[0, 8\)"):
        token_counts([{"targets": np.array([[1, 9]]), "mask": np.ones([1, 2])}], TGT_V)


def test_bleu_closed_form():
    # hyp "the cat sat on mat" vs ref "a cat sat on the mat .": p1 = 5/5, p2 = 2/4, p3 = 1/3,
    # p4 = 0/2 smoothed by sacrebleu's "exp" method to 1/(2·2); BP = exp(1 − 7/5).
    expected = 100 * np.exp(1 - 7 / 5) * (1 * 0.5 * (1 / 3) * 0.25) ** 0.25
    got = corpus_bleu(["the cat sat on mat"], ["a cat sat on the mat ."])
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        corpus_bleu(["a"], ["a", "b"])


@pytest.mark.slow
def test_train_cli_on_multi30k(tmp_path, data_dir):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--model=copy_attention", "--dataset=multi30k",
         f"--data_dir={data_dir}", "--train_steps=2", "--batch_size=8", "--embed_dim=8",
         "--hidden_dim=8", "--max_eval_batches=2", "--eval_batch_size=16",
         "--bleu_max_examples=16", f"--model_dir={tmp_path}"],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][0]
    result = json.loads(line[len("RESULT "):])
    np.testing.assert_allclose(result["ppl"], np.exp(result["nll"]), rtol=1e-6)
    # two steps from the log-unigram output bias: about the unigram model's perplexity (~330 on
    # test_2016_flickr), where a uniform start would give the target vocabulary size, 18726
    assert result["ppl"] < 1000, result
    for key in ("bleu", "bleu_test_2017_flickr", "bleu_test_2017_mscoco", "copied_share"):
        assert key in result, result
    assert 0.0 <= result["copied_share"] <= 1.0
