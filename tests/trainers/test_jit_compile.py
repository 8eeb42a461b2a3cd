"""The trainer's XLA-compiled step (`--jit_compile`, default auto; issue 22 item 6).

auto compiles a step whose batches have fixed shapes, and trains the same weights as the plain
graph step; under a MirroredStrategy of two logical CPUs, where XLA cannot reach the second
replica's variables, auto falls back to the graph step and trains as the compiled single-device
step does; a step that does not compile (an op without an XLA kernel) falls back to the graph with one log line, and the
failed attempt changes nothing (the weights equal a graph-only trainer's); batches whose shapes
vary run as a graph, saying why; jit_compile=true refuses what does not compile. (The rejected
non-finite step under XLA: tests/trainers/test_non_finite.py; exact resumption and mirrored =
default through the CLI, whose stream batches run under XLA by default:
tests/trainers/test_train.py.)
"""
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import data
import trainers.loop
from tflv.models.base import Objective
from tflv.models.rnnlm import RNNLM
from trainers.checkpoints import Checkpoints
from trainers.loop import Progress, Trainer
from trainers.strategy import make_strategy

BATCH = 4


@pytest.fixture(autouse=True)
def compile_short_runs(monkeypatch):
    """auto compiles these few-step runs (it leaves runs under AUTO_JIT_MIN_STEPS as graphs)."""
    monkeypatch.setattr(trainers.loop, "AUTO_JIT_MIN_STEPS", 0)


class StringOpRNNLM(RNNLM):
    """RNNLM whose loss also passes through a string op (AsString: no XLA kernel), adding 0."""

    def objective(self, batch, training=False):
        objective = super().objective(batch, training)
        zero = 0.0 * tf.cast(tf.strings.length(tf.strings.as_string(objective.loss)), tf.float32)
        return Objective(objective.loss + zero, objective.stats)


def train(tmp_path, jit_compile, form="stream", model_cls=RNNLM, strategy=None, steps=3,
          every=None):
    corpus = data.load("synthetic_hmm")
    options = {"seq_len": 8} if form == "stream" else {}
    batches = corpus.dataset("train", form, BATCH, shuffle=True, seed=0, repeat=True, **options)
    keras.utils.set_random_seed(0)
    trainer = Trainer(lambda: model_cls(len(corpus.vocab), 8, 8),
                      strategy or tf.distribute.get_strategy(), global_batch_size=BATCH,
                      learning_rate=0.01, clip_norm=5.0, jit_compile=jit_compile)
    trainer.build(next(iter(batches)))
    checkpoints = Checkpoints(trainer.checkpoint, str(tmp_path))
    checkpoints.restore_latest(str(tmp_path))  # a resumed run, if tmp_path holds one
    losses = []
    progress = Progress(steps, 0, tf.summary.create_noop_writer(), every=1,
                        print_fn=lambda line: losses.append(float(line.split()[3])))
    trainer.train(batches, steps, checkpoints, progress, checkpoint_every=every or steps)
    return trainer, losses


def assert_same_weights(a, b, rtol=1e-5):
    for x, y in zip(a.model.trainable_variables, b.model.trainable_variables):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=rtol, atol=1e-6, err_msg=x.path)


def test_auto_compiles_fixed_shapes_and_trains_as_the_graph_step(tmp_path):
    xla, xla_losses = train(tmp_path / "xla", "auto")
    graph, graph_losses = train(tmp_path / "graph", "false")
    assert xla.compiled is True and graph.compiled is False
    np.testing.assert_allclose(xla_losses, graph_losses, rtol=1e-4)
    assert_same_weights(xla, graph, rtol=1e-4)


def test_resume_under_xla_is_exact(tmp_path):
    straight, _ = train(tmp_path / "straight", "true", steps=4)
    train(tmp_path / "split", "true", steps=2)
    resumed, losses = train(tmp_path / "split", "true", steps=4)
    assert resumed.compiled is True and len(losses) == 2  # steps 3 and 4
    assert_same_weights(resumed, straight, rtol=0)


@pytest.mark.slow  # ~23 s on 2 cores
def test_mirrored_on_logical_cpus_falls_back_and_trains_as_the_compiled_step(tmp_path, caplog):
    strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    with caplog.at_level(logging.WARNING):
        mirrored, mirrored_losses = train(tmp_path / "mirrored", "auto", strategy=strategy,
                                          steps=2)
    lines = [r.getMessage() for r in caplog.records if "jit_compile=auto" in r.getMessage()]
    assert len(lines) == 1 and "does not compile" in lines[0] and "device" in lines[0], lines
    single, single_losses = train(tmp_path / "single", "true", steps=2)
    assert mirrored.compiled is False and single.compiled is True
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-4)
    assert_same_weights(mirrored, single, rtol=1e-4)


def test_a_step_that_does_not_compile_falls_back_with_one_line_and_no_trace(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        fallback, fallback_losses = train(tmp_path / "auto", "auto", model_cls=StringOpRNNLM)
    lines = [r.getMessage() for r in caplog.records if "jit_compile=auto" in r.getMessage()]
    assert len(lines) == 1 and "does not compile" in lines[0], lines
    assert fallback.compiled is False
    graph, graph_losses = train(tmp_path / "graph", "false", model_cls=StringOpRNNLM)
    np.testing.assert_array_equal(fallback_losses, graph_losses)
    assert_same_weights(fallback, graph, rtol=0)
    assert fallback.step == graph.step == 3
    with pytest.raises(tf.errors.OpError):
        train(tmp_path / "forced", "true", model_cls=StringOpRNNLM, steps=1)


def test_varying_batch_shapes_and_short_runs_run_as_a_graph_saying_why(tmp_path, caplog,
                                                                        monkeypatch):
    with caplog.at_level(logging.INFO, logger="absl"):
        trainer, losses = train(tmp_path / "sentences", "auto", form="sentences", steps=2)
    assert trainer.compiled is False and np.all(np.isfinite(losses))
    lines = [r.getMessage() for r in caplog.records if "jit_compile=auto" in r.getMessage()]
    assert len(lines) == 1 and "batch shapes vary" in lines[0] and "inputs" in lines[0], lines
    monkeypatch.setattr(trainers.loop, "AUTO_JIT_MIN_STEPS", 4)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="absl"):
        trainer, _ = train(tmp_path / "short", "auto", steps=3)
    lines = [r.getMessage() for r in caplog.records if "jit_compile=auto" in r.getMessage()]
    assert trainer.compiled is False
    assert len(lines) == 1 and "3 steps to run do not repay" in lines[0], lines


def test_jit_compile_values_are_checked():
    with pytest.raises(ValueError, match="jit_compile must be one of auto, true, false"):
        Trainer(lambda: RNNLM(5, 2, 2), tf.distribute.get_strategy(), 2, 0.1, 0.0,
                jit_compile="always")
    with pytest.raises(ValueError, match="mixed_precision must be one of float32, bfloat16"):
        Trainer(lambda: RNNLM(5, 2, 2), tf.distribute.get_strategy(), 2, 0.1, 0.0,
                mixed_precision="float16")
