"""Conformance: every registered model trains through the one loop, on one device and on two
mirrored replicas, checkpoints every variable, and exports a SavedModel whose `score` on raw text
equals the in-memory model's numbers (after Sonnet's conformance suite).

Models are built tiny from their flag defaults, on their fastest dataset.
"""
import numpy as np
import pytest
import tensorflow as tf

import data
from tflv.models import MODELS, HParams
from trainers import flags as tflv_flags
from trainers.export import ServingModule, TextBatcher, export_model
from trainers.loop import Trainer
from trainers.strategy import make_strategy

TINY = dict(embed_dim=8, hidden_dim=8, latent_dim=4, num_topics=4, num_states=4,
            num_components=2, num_softmaxes=2, summary_length=2, num_chains=2, num_flows=1,
            iw_samples=2, latent_samples=2, summary_samples=2, attention_samples=2,
            bleu_max_examples=4, beam_size=2, mean_field_iterations=2, sa_vae_steps=1)
FORM_OPTIONS = {"stream": {"seq_len": 8}, "sentences": {"max_length": 10},
                "tokens": {"max_length": 10}, "parallel": {"max_length": 10}}
TEXTS = {"synthetic_hmm": ["s1 s2 s3", "s4"], "ptb": ["the market fell", "stocks rose"],
         "multi30k": ["a dog runs", "two men"], "news20": ["game team", "god xyzzy-unknown"],
         "conll2000": ["the market fell", "stocks rose"]}
TARGETS = ["ein hund läuft", "zwei männer"]


def hparams_for(model_cls):
    values = {name: tflv_flags.FLAGS[name].default for name in tflv_flags.MODEL_FLAGS}
    values.update({k: v for k, v in TINY.items() if k in values})
    return HParams(values)


def setup(name, strategy):
    model_cls = MODELS[name]
    dataset = "synthetic_hmm" if "synthetic_hmm" in model_cls.datasets else model_cls.datasets[0]
    corpus = data.load(dataset)
    form = model_cls.input_form
    batches = corpus.dataset("train", form, 4, shuffle=True, seed=1, repeat=True,
                             **FORM_OPTIONS.get(form, {}))
    trainer = Trainer(lambda: model_cls.from_corpus(corpus, hparams_for(model_cls)), strategy,
                      global_batch_size=4, learning_rate=1e-3, clip_norm=5.0)
    trainer.build(next(iter(batches)))
    return corpus, trainer, batches


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_conformance(name, tmp_path):
    corpus, trainer, batches = setup(name, tf.distribute.get_strategy())
    model = trainer.model

    # Every variable is reachable by tf.train.Checkpoint(model=...), seed states aside.
    tracked = {id(t) for t in tf.train.TrackableView(model).descendants()}
    missing = [v.path for v in model.variables
               if id(v) not in tracked and "seed_generator" not in v.path]
    assert not missing, f"{name}: variables a checkpoint of the model would miss: {missing}"

    losses = []
    step = trainer._train_step
    for batch in batches.take(2):
        loss, _ = step(batch)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses)) and trainer.step == 2

    # SavedModel: score raw text, reload, same numbers.
    texts = [tf.constant(TEXTS[corpus.name])]
    if type(model).input_form == "parallel":
        texts.append(tf.constant(TARGETS))
    in_memory = ServingModule(model, corpus).score(*texts)
    export_model(model, corpus, str(tmp_path / "export"))
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    served = loaded.signatures["score"](**dict(zip(["text", "target"], texts)))
    assert np.all(np.isfinite(served["log_prob"].numpy()))
    assert np.all(served["log_prob"].numpy() <= 1e-4)  # log-probabilities or lower bounds
    np.testing.assert_allclose(served["tokens"].numpy(), in_memory["tokens"].numpy())
    if not model.stochastic_score:
        np.testing.assert_allclose(served["log_prob"].numpy(), in_memory["log_prob"].numpy(),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_trains_on_mirrored_replicas(name):
    strategy = make_strategy("mirrored")  # the two logical CPU devices of conftest.py
    _, trainer, batches = setup(name, strategy)
    data_iter = iter(strategy.experimental_distribute_dataset(batches))
    loss, _ = trainer._train_step(next(data_iter))
    assert np.isfinite(float(loss)) and trainer.step == 1
