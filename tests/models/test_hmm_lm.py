"""hmm_lm: the objective is the exact blocked-HMM likelihood (checked against the dense HMM),
state dropout acts in training only, a few Adam steps on synthetic_hmm lower the loss, and the
real trainer command line trains, evaluates and exports a `score` signature that returns the
exact log-likelihood."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import data
from data.word_clusters import bigram_counts, class_bigram_log_likelihood, exchange_clusters
from tests.training import adam_step
from tflv.distributions import HMM
from tflv.models import HMMLM, get_model_class

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dense_log_prob(model, x, mask):
    """log p(x) from the dense HMM over all K states (emission -inf outside the word's block)."""
    layer = model.hmm
    params = layer(None)
    s, v = layer.block_size, layer.blocks.vocab_size
    emission = np.full((layer.num_states, v), -np.inf, np.float32)
    for w in range(v):
        b, slot = layer.blocks.block_of[w], layer.blocks.slot_of[w]
        emission[b * s:(b + 1) * s, w] = params.emission[b, :, slot]
    return HMM.from_log_potentials(params.initial, params.transition,
                                   np.transpose(emission[:, x], [1, 2, 0]),
                                   semiring="log").log_prob(mask=mask).numpy()


def test_objective_is_the_exact_likelihood_and_dropout_trains_only():
    tf.keras.utils.set_random_seed(0)
    model = HMMLM(8, [0, 1, 0, 1, 0, 1, 1], 2, embed_dim=6, state_dropout=0.5)
    x = np.array([[1, 2, 3, 4, 5], [6, 0, 1, 0, 0]], np.int32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32)
    batch = {"inputs": x, "targets": x, "mask": mask}
    objective = model.objective(batch)
    np.testing.assert_allclose(-objective.stats["nll"], dense_log_prob(model, x, mask > 0),
                               rtol=1e-5)
    np.testing.assert_allclose(objective.stats["tokens"], [5, 3])
    np.testing.assert_allclose(objective.loss, objective.stats["nll"] / [5, 3], rtol=1e-6)
    trained = model.objective(batch, training=True).stats["nll"].numpy()
    assert np.all(np.isfinite(trained)) and not np.allclose(trained, objective.stats["nll"])
    assert get_model_class("hmm_lm") is HMMLM


def test_loss_falls_on_synthetic_hmm():
    tf.keras.utils.set_random_seed(1)
    corpus = data.load("synthetic_hmm")
    read = set()
    model = HMMLM.from_corpus(corpus, num_states=16, num_blocks=4, embed_dim=16, hidden_dim=16,
                              state_dropout=0.25, read=read)
    assert read == {"num_states", "num_blocks", "embed_dim", "hidden_dim", "state_dropout",
                    "word_assignment"}
    blocks = np.array(model.config["word_blocks"])
    assert np.bincount(blocks).max() - np.bincount(blocks).min() <= 1  # round robin
    step = adam_step(model, 0.05)
    batches = iter(corpus.dataset("train", "stream", 16, shuffle=True, seed=0).repeat())
    losses = [float(step(next(batches))) for _ in range(30)]
    assert np.mean(losses[-5:]) < losses[0] - 0.25, losses


def test_cluster_assignment_is_the_exchange_algorithms_classes():
    corpus = data.load("synthetic_hmm")
    model = HMMLM.from_corpus(corpus, num_states=16, num_blocks=4, embed_dim=4, hidden_dim=4,
                              word_assignment="clusters")
    v = corpus.info["vocab_size"]
    bigrams = bigram_counts(corpus.dataset("train", "stream", 1024), v)
    clusters = exchange_clusters(*bigrams, v, 4)
    np.testing.assert_array_equal(model.config["word_blocks"], clusters.classes)
    frequency = HMMLM.word_blocks(corpus, 4, "frequency").block_of
    # The clusters are a better class bigram model of the training text than the round robin.
    assert clusters.log_likelihood > class_bigram_log_likelihood(*bigrams, frequency, 4) + 100
    with pytest.raises(ValueError, match="word_assignment must be"):
        HMMLM.word_blocks(corpus, 4, "brown")


def test_bad_block_count_is_a_clear_error():
    corpus = data.load("synthetic_hmm")
    with pytest.raises(ValueError, match="num_blocks=3 must divide num_states=16"):
        HMMLM.from_corpus(corpus, num_states=16, num_blocks=3, embed_dim=4, hidden_dim=4)


@pytest.mark.slow
def test_trainer_trains_and_exports_score(tmp_path):
    flags = ["--model=hmm_lm", "--dataset=synthetic_hmm", "--num_states=8", "--num_blocks=2",
             "--word_assignment=clusters",
             "--embed_dim=8", "--hidden_dim=8", "--state_dropout=0.5", "--batch_size=8",
             "--seq_len=10", "--eval_batch_size=32", "--log_every=1", "--train_steps=3",
             "--eval_every=2",
             f"--model_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'export'}"]
    proc = subprocess.run([sys.executable, "-m", "trainers.train", *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines()
              if line.startswith("RESULT ")]
    assert len(result) == 1 and result[0]["step"] == 3, proc.stdout
    evals = [line for line in proc.stdout.splitlines() if line.startswith("eval at step 2: ")]
    assert len(evals) == 1 and "valid_ppl " in evals[0], proc.stdout
    assert np.isfinite(result[0]["nll"]), result
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    out = loaded.signatures["score"](text=tf.constant(["s1 s2 s3", "s4"]))
    log_prob = out["log_prob"].numpy()
    assert np.all(np.isfinite(log_prob)) and np.all(log_prob < 0), out
