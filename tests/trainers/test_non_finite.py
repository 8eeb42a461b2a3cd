"""A non-finite loss or gradient never reaches the weights or a checkpoint (issue 18).

The step is rejected before the weights change, on one device and when only one of two mirrored
replicas sees it; the run stops naming the step; the last checkpoint is finite and a new trainer
resumes from it; on one device the step runs under XLA (what the default auto runs for these
fixed-shape batches). Before, the loss was checked after the update, so the NaN weights were saved
and every rerun resumed them.
"""
import numpy as np
import pytest
import tensorflow as tf

import data
from tflv.models.base import Objective
from tflv.models.rnnlm import RNNLM
import trainers.loop
from trainers.checkpoints import Checkpoints
from trainers.loop import Progress, Trainer
from trainers.strategy import make_strategy

BATCH = 4


@tf.custom_gradient
def _scale_gradient(x, scale):
    return tf.identity(x), lambda dy: (dy * scale, tf.zeros_like(scale))


class PoisonedRNNLM(RNNLM):
    """RNNLM whose per-example loss is multiplied by `batch["loss_scale"]` and whose gradient
    by `batch["grad_scale"]` (both 1 except where a test puts a NaN)."""

    def objective(self, batch, training=False):
        objective = super().objective(batch, training)
        loss = _scale_gradient(objective.loss * batch["loss_scale"], batch["grad_scale"])
        return Objective(loss, objective.stats)


def poisoned_batches(bad_step: int, field: str):
    """Stream batches of synthetic_hmm; at step `bad_step` one example's `field` is NaN."""
    corpus = data.load("synthetic_hmm")
    base = corpus.dataset("train", "stream", BATCH, seq_len=8, repeat=True)
    step = tf.data.Dataset.range(1, 1 << 30)

    def poison(batch, step):
        scale = tf.where((step == bad_step) & (tf.range(BATCH) == BATCH - 1), np.nan, 1.0)
        ones = tf.ones([BATCH])
        return {**batch, "loss_scale": scale if field == "loss_scale" else ones,
                "grad_scale": scale if field == "grad_scale" else ones}

    return corpus, tf.data.Dataset.zip(base, step).map(poison)


def make(strategy, batches, vocab_size):
    trainer = Trainer(lambda: PoisonedRNNLM(vocab_size, 8, 8), strategy, global_batch_size=BATCH,
                      learning_rate=0.01, clip_norm=0.0)
    trainer.build(next(iter(batches)))
    return trainer


@pytest.mark.parametrize("strategy_name, field", [("default", "loss_scale"),
                                                   ("mirrored", "grad_scale")])
def test_non_finite_step_is_rejected_and_never_checkpointed(tmp_path, strategy_name, field,
                                                             monkeypatch):
    monkeypatch.setattr(trainers.loop, "AUTO_JIT_MIN_STEPS", 0)  # auto compiles these 6 steps
    corpus, batches = poisoned_batches(bad_step=3, field=field)
    strategy = make_strategy(strategy_name)
    trainer = make(strategy, batches, len(corpus.vocab))
    checkpoints = Checkpoints(trainer.checkpoint, str(tmp_path))
    progress = Progress(6, 0, tf.summary.create_noop_writer(), every=100, print_fn=lambda _: None)
    after_step_2 = {}

    def snapshot(step):
        if step == 2:
            after_step_2["model"] = [v.numpy().copy() for v in trainer.model.variables]
            after_step_2["optimizer"] = [v.numpy().copy() for v in trainer.optimizer.variables]

    with pytest.raises(FloatingPointError, match=r"step 3: the loss \((nan|[-\d.e+]+)\) or a "
                                                 r"gradient is not finite.*ckpt-2 is kept"):
        trainer.train(batches, 6, checkpoints, progress, checkpoint_every=2, on_eval=snapshot,
                      eval_every=1)
    # The finiteness check and its tf.cond under XLA (jit_compile=auto) on one device; two
    # logical CPUs fall back to the graph step (tests/trainers/test_jit_compile.py).
    assert trainer.compiled is (strategy_name == "default")
    assert trainer.step == 2  # no optimizer step for the rejected batch
    for variable, before in zip(trainer.model.variables, after_step_2["model"]):
        np.testing.assert_array_equal(variable.numpy(), before)  # the weights did not change
    for variable, before in zip(trainer.optimizer.variables, after_step_2["optimizer"]):
        np.testing.assert_array_equal(variable.numpy(), before)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")
    # A rerun (here: a new trainer without the poison) resumes the finite checkpoint.
    resumed = make(tf.distribute.get_strategy(), batches, len(corpus.vocab))
    assert Checkpoints(resumed.checkpoint, str(tmp_path)).restore_latest(str(tmp_path))
    assert resumed.step == 2
    for variable, before in zip(resumed.model.variables, after_step_2["model"]):
        np.testing.assert_array_equal(variable.numpy(), before)
