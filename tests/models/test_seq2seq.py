"""EncoderDecoder: every attention mode's likelihood against brute force, the decoding step against
the parallel (teacher-forced) pass, latent attention's estimators against the exact marginal and
the enumerated ELBO (seeded z-tests of the score function's value and gradient, the Gumbel-softmax
value as τ → 0), the older names and configs, BLEU's closed form, and one end-to-end
`trainers.train` run on Multi30k."""
import itertools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tflv.bleu import corpus_bleu
from tflv.models.config import ConfigError, Reads
from tflv.models.seq2seq import EncoderDecoder, LatentAttention
from tflv.vi import estimators
from trainers.run import with_new_hparams
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
    model = make("latent")
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


def make_latent(estimator, scale=0.8):
    """A latent-attention model whose weights are redrawn N(0, scale²) (N(0, 1)-ish logits), so
    that the prior α_t, the posterior q and p(y_t | z_t = s) are far from uniform."""
    model = make("latent", estimator=estimator)
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:
        v.assign(rng.normal(0.0, scale, v.shape).astype(np.float32))
    return model


def exact_elbo(model):
    """Σ_t [Σ_s q(s) log p(y_t | z_t = s) − KL(q(z_t) ‖ α_t)] per sentence [B], enumerated."""
    mask = tf.cast(BATCH["target_mask"], tf.float32)
    state = model.encode(BATCH["source"], BATCH["source_mask"])
    h, _, _ = model.decode_states(BATCH["target_inputs"], state, mask)
    log_lik = model.position_log_likelihood(h, state, tf.cast(BATCH["target_targets"], tf.int32))
    log_prior = model.log_alignment(h, state)
    log_q = model.posterior_log_alignment(BATCH, state)
    q = tf.exp(log_q)
    per_token = tf.reduce_sum(q * log_lik, -1) - tf.reduce_sum(q * (log_q - log_prior), -1)
    return tf.reduce_sum(per_token * mask, axis=1)


def training_draws(model, variables, draws):
    """`draws` training steps' −loss·tokens (the ELBO estimate, [R, B]) and the gradient of its
    sum ([R, P]), each with a new seed."""
    tokens = tf.reduce_sum(BATCH["target_mask"], axis=1)

    @tf.function
    def draw():
        with tf.GradientTape() as tape:
            value = -model.objective(BATCH, training=True).loss * tokens  # [B]
            total = tf.reduce_sum(value)
        grads = tape.gradient(total, variables)
        return value, tf.concat([tf.reshape(g, [-1]) for g in grads], 0)

    values, grads = zip(*[draw() for _ in range(draws)])
    return np.array(values), np.array(grads)


def test_enumeration_trains_by_the_exact_marginal_as_latent_exact_did():
    model = make("latent", estimator=estimators.Enumeration())
    train = model.objective(BATCH, training=True)
    _, _, lik, log_alignment = pieces(model)
    mask = BATCH["target_mask"].numpy()
    for b in range(2):  # log Σ over z_1..z_T of Π_t α_t(z_t) p(y_t | z_t), by brute force
        t_len, s_len = int(mask[b].sum()), int(BATCH["source_mask"][b].numpy().sum())
        total = sum(np.exp(sum(log_alignment[b, t, z[t]] + lik[b, t, z[t]]
                               for t in range(t_len)))
                    for z in itertools.product(range(s_len), repeat=t_len))
        np.testing.assert_allclose(-train.loss[b] * mask[b].sum(), np.log(total), rtol=1e-5)
    np.testing.assert_allclose(train.loss, model.objective(BATCH).loss, rtol=1e-6)
    # the older name builds the same model: same variables, same numbers
    legacy = make("latent_exact")
    assert [v.path for v in legacy.trainable_variables] == \
        [v.path for v in model.trainable_variables]
    np.testing.assert_array_equal(legacy.objective(BATCH, training=True).loss, train.loss)


def test_score_function_value_and_gradient_are_unbiased_for_the_exact_elbo():
    model = make_latent(estimators.ScoreFunction(2, "leave_one_out"))
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        reference = exact_elbo(model)  # [B]
        total = tf.reduce_sum(reference)
    exact = tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(total, variables)], 0).numpy()
    values, grads = training_draws(model, variables, 200)
    z = (values.mean(0) - reference.numpy()) / (values.std(0, ddof=1) / np.sqrt(len(values)))
    assert np.all(np.abs(z) < 4.5), z
    se = grads.std(0, ddof=1) / np.sqrt(len(grads))
    z = (grads.mean(0) - exact) / np.maximum(se, 1e-6)
    assert np.all(np.abs(z) < 4.5), np.abs(z).max()
    assert np.abs(exact).max() > 0.1  # a gradient worth testing
    # evaluation: the exact marginal and the exact ELBO of q, which it bounds
    stats = model.objective(BATCH).stats
    np.testing.assert_allclose(stats["elbo"], reference, rtol=1e-5)
    assert np.all(stats["elbo"].numpy() <= -stats["nll"].numpy() + 1e-5)


def test_gumbel_softmax_value_approaches_the_exact_elbo_as_the_temperature_falls():
    tokens = BATCH["target_mask"].numpy().sum(1)
    values_of = lambda model, draws: np.array([  # [R, B]: each the mean over S samples
        -model.objective(BATCH, training=True).loss.numpy() * tokens for _ in range(draws)])
    z_of = lambda values, reference: (values.mean(0) - reference) / (
        values.std(0, ddof=1) / np.sqrt(len(values)))
    model = make_latent(estimators.GumbelSoftmax(num_samples=2, temperature=1.0))
    reference = exact_elbo(model).numpy()
    for temperature in (1.0, 0.02):  # finite gradients, also nearly one-hot
        # (the model reads its estimator at each call: one model serves every setting)
        model.estimator = estimators.GumbelSoftmax(num_samples=2, temperature=temperature)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model.objective(BATCH, training=True).loss)
        grads = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(
            loss, model.trainable_variables)]
        assert all(np.all(np.isfinite(g)) for g in grads) and max(np.abs(g).max()
                                                                  for g in grads) > 0
    model.estimator = estimators.GumbelSoftmax(num_samples=25, temperature=0.02)
    values = values_of(model, 8)
    assert np.all(np.abs(z_of(values, reference)) < 4.5), (values.mean(0), reference)
    model.estimator = estimators.GumbelSoftmax(num_samples=25, temperature=5.0)
    values = values_of(model, 8)  # relaxed codes near q's mean: a visible bias
    assert np.abs(z_of(values, reference)).max() > 6.0, (values.mean(0), reference)


def test_learned_baseline_is_fitted_and_created_by_an_evaluation_call():
    model = make("latent", estimator=estimators.ScoreFunction(2, "learned"))
    before = {v.path for v in model.trainable_variables}
    assert any("baseline" in path for path in before)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model.objective(BATCH, training=True).loss)
    assert {v.path for v in model.trainable_variables} == before
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables)))
    grads = {path: tf.convert_to_tensor(g).numpy() for path, g in grads.items()}
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    assert all(np.abs(g).max() > 0 for path, g in grads.items() if "baseline" in path)


def test_older_names_and_configs_map_to_their_estimators():
    loo = estimators.ScoreFunction
    make = lambda attention, **kwargs: EncoderDecoder(SRC_V, TGT_V, attention, **kwargs)  # unbuilt
    assert make("latent_exact").estimator == estimators.Enumeration()
    assert make("latent_elbo").estimator == loo(2, "leave_one_out")
    assert make("latent_elbo", num_samples=3).estimator == loo(3, "leave_one_out")
    assert make("latent").estimator == estimators.Enumeration()
    assert make("latent", estimator="score_function", num_samples=2,
                baseline="leave_one_out").estimator == loo(2, "leave_one_out")
    assert make("soft").estimator is None
    # a Keras config written before estimators were objects
    old = {**make("latent_elbo").get_config(), "attention": "latent_elbo", "num_samples": 3}
    for key in ("estimator", "baseline", "temperature", "straight_through"):
        del old[key]
    restored = EncoderDecoder.from_config(old)
    assert restored.mode == "latent" and restored.estimator == loo(3, "leave_one_out")
    # LatentAttention.Config: the estimator fields, or the older attention_training
    config = LatentAttention.Config
    pick = LatentAttention.config_estimator
    assert pick(config()) == estimators.Enumeration()
    assert pick(config(attention_training="exact")) == estimators.Enumeration()
    assert pick(config(attention_training="elbo", attention_samples=3)) == \
        loo(3, "leave_one_out")
    assert pick(config(estimator="gumbel_softmax", latent_samples=2, gumbel_temperature=0.5,
                       straight_through=True)) == estimators.GumbelSoftmax(2, 0.5, True)
    read = set()  # the fields a run records: those its estimator takes
    pick(Reads(config(estimator="score_function", latent_samples=2, baseline="none"), read))
    assert read == {"attention_training", "estimator", "latent_samples", "baseline"}
    with pytest.raises(ConfigError, match="attention_training is the older name") as err:
        pick(config(attention_training="elbo", estimator="score_function"))
    assert set(err.value.fields) == {"attention_training", "estimator"}
    # a run recorded with attention_training: the new fields at their defaults, as a restore
    recorded = {"model": "latent_attention", "hparams": {"attention_training": "elbo",
                                                         "attention_samples": 2}}
    values = with_new_hparams(recorded, {name: field.default for name, field in
                                         config.__dataclass_fields__.items()})["hparams"]
    assert pick(config.pick(values)) == loo(2, "leave_one_out")


@pytest.mark.parametrize("estimator", [estimators.Enumeration(),
                                       estimators.ScoreFunction(3, "learned"),
                                       estimators.GumbelSoftmax(2, 0.3, True)])
def test_config_round_trip_keeps_the_estimator(estimator):
    model = make("latent", estimator=estimator)
    clone = EncoderDecoder.from_config(model.get_config())
    assert clone.estimator == estimator and clone.get_config() == model.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(revived) is EncoderDecoder and revived.estimator == estimator


def test_soft_attention_likelihood_is_the_softmax_at_the_expected_memory():
    model = make("soft")
    h, state, _, log_alignment = pieces(model)
    context = np.einsum("bts,bsd->btd", np.exp(log_alignment), state["memory"].numpy())
    logits = model.output_logits(h, tf.constant(context, tf.float32)).numpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets, mask = BATCH["target_targets"].numpy(), BATCH["target_mask"].numpy()
    expected = -(np.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * mask).sum(-1)
    np.testing.assert_allclose(model.objective(BATCH).stats["nll"], expected, rtol=1e-5)


@pytest.mark.parametrize("attention", ["soft", "latent", "copy"])
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
    with pytest.raises(ValueError, match="estimator is for attention='latent' only"):
        EncoderDecoder(SRC_V, TGT_V, attention="soft", estimator=estimators.Enumeration())
    with pytest.raises(ValueError, match="names its estimator"):
        EncoderDecoder(SRC_V, TGT_V, attention="latent_elbo", estimator="score_function")
    with pytest.raises(ValueError, match="estimator must be one of"):
        EncoderDecoder(SRC_V, TGT_V, attention="latent", estimator="vimco")


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
