"""Keras's own loop on every model: `compile(optimizer)`, `fit`, `evaluate` against the trainer.

`LatentVariableModel.train_step` / `test_step` (tflv/models/base.py) must take the same step as
`trainers.loop.Trainer` on the same batch from the same weights (loss = mean over the global
batch, Adam with the same global-norm clipping, or the model's closed-form `apply_update`), and
`evaluate` must report `metrics_from_sums` of the statistics summed over the whole run, the
numbers `Trainer.evaluate` reports, under the default strategy and under `MirroredStrategy`
over the two logical CPU devices of conftest.py.
"""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import data
from tflv.models import MODELS
from trainers.loop import Trainer

TINY = dict(embed_dim=8, hidden_dim=8, latent_dim=4, num_topics=4, num_states=4,
            num_components=2, num_softmaxes=2, summary_length=2, num_chains=2, num_flows=1,
            iw_samples=2, latent_samples=2, summary_samples=2, attention_samples=2,
            bleu_max_examples=4, beam_size=2, mean_field_iterations=2)
FORM_OPTIONS = {"stream": {"seq_len": 6}, "sentences": {"max_length": 8},
                "tokens": {"max_length": 8}, "parallel": {"max_length": 8}}
SOURCE = {"stream": "text", "sentences": "text", "bow": "text", "tokens": "tagged",
          "parallel": "parallel"}
WORDS = ["the", "a", "dog", "cat", "runs", "sleeps", "big", "small", "red", "sees"]
TAGS = {"the": "DT", "a": "DT", "dog": "NN", "cat": "NN", "runs": "VB", "sleeps": "VB",
        "big": "JJ", "small": "JJ", "red": "JJ", "sees": "VB"}
CASES = [(name, {}) for name in sorted(MODELS)] + [("hmm", {"hmm_training": "em"}),
                                                   ("sentence_vae", {"kl_schedule": "linear",
                                                                     "kl_warmup_steps": 4})]
# Under ~10 s each on 2 loaded cores; the others run in the full tier.
FAST = {"rnnlm", "lda", "nvdm"}
LEARNING_RATE, CLIP_NORM, BATCH = 1e-2, 1.0, 4


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """One tiny corpus per generic kind (text, tagged, parallel), from a fixed seed."""
    root = tmp_path_factory.mktemp("corpora")
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(24)]
    (root / "text").mkdir()
    (root / "text" / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "parallel").mkdir()
    (root / "parallel" / "train.src").write_text("\n".join(lines) + "\n")
    (root / "parallel" / "train.tgt").write_text("\n".join(line.upper() for line in lines) + "\n")
    (root / "tagged").mkdir()
    (root / "tagged" / "train.txt").write_text("".join(
        "".join(f"{w} {TAGS[w]}\n" for w in line.split()) + "\n" for line in lines))
    return {kind: data.load(f"{kind}:{root / kind}") for kind in ("text", "tagged", "parallel")}


def setup(name, overrides, corpora):
    model_cls = MODELS[name]
    form = model_cls.input_form
    corpus = corpora[SOURCE[form]]
    config = model_cls.Config.pick({**TINY, **overrides})
    # Unshuffled: every pass sees the same batches, so a sampled score draws the same noise.
    dataset = corpus.dataset("train", form, BATCH, **FORM_OPTIONS.get(form, {}))
    return model_cls, corpus, config, dataset


def fitted_like_trainer(name, overrides, corpora):
    """(trainer, its loss) after one trainer step, and (model, its history) after one `fit`
    step on the same batch from the same weights."""
    model_cls, corpus, config, dataset = setup(name, overrides, corpora)
    batch = next(iter(dataset))
    trainer = Trainer(lambda: model_cls.from_corpus(corpus, config), tf.distribute.get_strategy(),
                      global_batch_size=BATCH, learning_rate=LEARNING_RATE, clip_norm=CLIP_NORM)
    trainer.build(batch)
    model = model_cls.from_corpus(corpus, config)
    model.objective(batch)
    for ours, theirs in zip(model.variables, trainer.model.variables, strict=True):
        ours.assign(theirs)  # the weights and the seed generators' states
    model.compile(keras.optimizers.Adam(LEARNING_RATE, beta_1=model.adam_beta_1,
                                        global_clipnorm=CLIP_NORM))
    history = model.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    loss, _ = trainer._train_step(batch)
    return trainer, float(loss), model, history, dataset


@pytest.mark.parametrize("name,overrides", [
    pytest.param(name, overrides, marks=() if name in FAST and not overrides
                 else pytest.mark.slow) for name, overrides in CASES])
def test_fit_takes_the_trainers_step_and_evaluate_reports_its_metrics(name, overrides, corpora):
    trainer, loss, model, history, dataset = fitted_like_trainer(name, overrides, corpora)
    np.testing.assert_allclose(history.history["loss"][0], loss, rtol=1e-5)
    assert int(model.optimizer.iterations) == trainer.step == 1
    for ours, theirs in zip(model.weights, trainer.model.weights, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=ours.path)
    expected = trainer.evaluate(dataset)
    got = model.evaluate(dataset, verbose=0, return_dict=True)
    assert set(got) == {"loss", *expected}
    for metric, value in expected.items():
        np.testing.assert_allclose(got[metric], value, rtol=1e-5, err_msg=metric)


def test_evaluate_reports_the_perplexity_of_the_summed_statistics(corpora):
    """exp(Σ nll / Σ tokens) over every batch, not a mean of per-batch perplexities."""
    model_cls, corpus, config, dataset = setup("rnnlm", {}, corpora)
    model = model_cls.from_corpus(corpus, config)
    model.objective(next(iter(dataset)))
    for weight in model.trainable_weights:  # far from uniform: batches differ in perplexity
        weight.assign(tf.random.normal(weight.shape, stddev=2.0, seed=1))
    model.compile("adam")
    got = model.evaluate(dataset, verbose=0, return_dict=True)
    stats = [model.objective(batch).stats for batch in dataset]
    nll = sum(float(tf.reduce_sum(s["nll"])) for s in stats)
    tokens = sum(float(tf.reduce_sum(s["tokens"])) for s in stats)
    assert len(stats) > 1 and got["tokens"] == tokens
    np.testing.assert_allclose(got["ppl"], math.exp(nll / tokens), rtol=1e-5)
    per_batch = np.mean([math.exp(float(tf.reduce_sum(s["nll"]) / tf.reduce_sum(s["tokens"])))
                         for s in stats])
    assert abs(per_batch - got["ppl"]) > 1e-2 * got["ppl"]  # the two differ on this data


@pytest.mark.parametrize("name", ["rnnlm", pytest.param("hmm", marks=pytest.mark.slow)])
def test_fit_under_mirrored_strategy_matches_one_device(name, corpora):
    """Two replicas, each half of the global batch: the same update and metrics as one device
    (models without noise, whose rows do not depend on how the batch is split)."""
    model_cls, corpus, config, dataset = setup(name, {}, corpora)
    batch = next(iter(dataset))
    one = model_cls.from_corpus(corpus, config)
    one.objective(batch)
    weights = one.get_weights()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        two = model_cls.from_corpus(corpus, config)
        two.objective(batch)
        two.set_weights(weights)
        two.compile(keras.optimizers.Adam(LEARNING_RATE, global_clipnorm=CLIP_NORM))
    one.compile(keras.optimizers.Adam(LEARNING_RATE, global_clipnorm=CLIP_NORM))
    one_history = one.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    two_history = two.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    np.testing.assert_allclose(two_history.history["loss"], one_history.history["loss"],
                               rtol=1e-5)
    for ours, theirs in zip(two.weights, one.weights, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=ours.path)
    got = two.evaluate(dataset, verbose=0, return_dict=True)
    expected = one.evaluate(dataset, verbose=0, return_dict=True)
    for metric, value in expected.items():
        np.testing.assert_allclose(got[metric], value, rtol=1e-5, err_msg=metric)


def test_closed_form_updates_under_several_replicas_are_trainer_only(corpora):
    model_cls, corpus, config, dataset = setup("lda", {}, corpora)
    with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
        model = model_cls.from_corpus(corpus, config)
        model.compile("adam")
    with pytest.raises(NotImplementedError, match="train it with trainers.train"):
        model.fit(dataset, verbose=0)


def test_compile_refuses_a_loss():
    model = MODELS["rnnlm"](vocab_size=5, embed_dim=4, hidden_dim=4)
    with pytest.raises(ValueError, match="trains on its own objective"):
        model.compile("adam", loss="mse")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", ["rnnlm", pytest.param("nvdm", marks=pytest.mark.slow),
                                  pytest.param("hmm", marks=pytest.mark.slow)])
def test_fit_under_a_global_mixed_precision_policy(name, policy, corpora):
    """Under `keras.mixed_precision.set_global_policy`, `fit` trains with finite losses and
    float32 weights, the loss in float32 (mixed_float16: Keras's loss scaling, applied by
    `train_step`, lets it train); its evaluation matches the float32 model's on the same
    weights to half precision's tolerance."""
    model_cls, corpus, config, dataset = setup(name, {}, corpora)
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = model_cls.from_corpus(corpus, config)
        model.compile(keras.optimizers.Adam(1e-2))
        history = model.fit(dataset.repeat(), steps_per_epoch=3, epochs=1, verbose=0)
        mixed = model.evaluate(dataset, return_dict=True, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(history.history["loss"]))
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    full = model_cls.from_corpus(corpus, config)
    full.objective(next(iter(dataset)))
    for ours, theirs in zip(full.variables, model.variables, strict=True):
        ours.assign(tf.cast(theirs, ours.dtype))
    full.compile(keras.optimizers.Adam(1e-2))
    exact = full.evaluate(dataset, return_dict=True, verbose=0)
    key = "ppl" if "ppl" in exact else "loss"
    assert mixed[key] == pytest.approx(exact[key], rel=0.05)
