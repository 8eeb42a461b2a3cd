"""Learning-rate schedules: closed forms at every step, and the Trainer's Adam following them."""
import numpy as np
import pytest
import tensorflow as tf

import data
from tflv.models.rnnlm import RNNLM
from trainers.checkpoints import Checkpoints
from trainers.loop import Trainer, learning_rate_schedule

CLOSED_FORMS = {
    "constant": lambda s, total: 1.0,
    "cosine": lambda s, total: 0.5 * (1 + np.cos(np.pi * min(s, total) / total)),
    "linear": lambda s, total: 1 - min(s, total) / total,
}


@pytest.mark.parametrize("schedule", sorted(CLOSED_FORMS))
def test_schedule_matches_its_closed_form(schedule):
    rate = learning_rate_schedule(0.01, schedule, 40)
    for step in (0, 1, 13, 20, 39, 40, 55):
        np.testing.assert_allclose(float(rate(step)), 0.01 * CLOSED_FORMS[schedule](step, 40),
                                   rtol=1e-5, atol=1e-9)


def make_trainer(schedule):
    corpus = data.load("synthetic_hmm")
    batches = iter(corpus.dataset("train", "stream", 4, seq_len=8, repeat=True))
    trainer = Trainer(lambda: RNNLM(len(corpus.vocab), 8, 8), tf.distribute.get_strategy(),
                      global_batch_size=4, learning_rate=learning_rate_schedule(0.01, schedule, 6),
                      clip_norm=0.0)
    trainer.build(next(batches))
    return trainer, batches


def test_trainer_steps_with_the_scheduled_rate():
    trainer, batches = make_trainer("cosine")
    for _ in range(3):
        trainer._train_step(next(batches))
    assert trainer.step == 3
    np.testing.assert_allclose(float(trainer.optimizer.learning_rate), 0.005, rtol=1e-5)


def test_bad_schedule_is_named():
    with pytest.raises(ValueError, match="one of constant, cosine, linear, got 'step'"):
        learning_rate_schedule(0.01, "step", 10)
    with pytest.raises(ValueError, match="needs total_steps >= 1, got 0"):
        learning_rate_schedule(0.01, "cosine", 0)


@pytest.mark.parametrize("written,read", [("cosine", "constant"), ("constant", "linear")])
def test_a_checkpoint_restores_under_any_schedule(tmp_path, written, read):
    # Exporting or sampling a run rebuilds its trainer with the default (constant) schedule.
    trainer, batches = make_trainer(written)
    trainer._train_step(next(batches))
    Checkpoints(trainer.checkpoint, str(tmp_path)).save(1)
    restored, _ = make_trainer(read)
    assert Checkpoints(restored.checkpoint, str(tmp_path)).restore_latest(str(tmp_path))
    assert restored.step == 1
    for a, b in zip(restored.model.weights, trainer.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
