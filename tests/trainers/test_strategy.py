"""Strategy selection: several mirrored strategies in one process (a notebook, a test session)
train side by side; an unknown name is refused with the valid ones."""
import numpy as np
import pytest
import tensorflow as tf

import data
from tflv.models.lda import LatentDirichletAllocation
from tflv.models.rnnlm import RNNLM
from trainers.strategy import make_strategy
from trainers.loop import Trainer


def one_step(model_fn, batches, global_batch_size):
    """Builds a trainer on a fresh mirrored strategy and runs one training step."""
    strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    trainer = Trainer(model_fn, strategy, global_batch_size=global_batch_size,
                      learning_rate=1e-3, clip_norm=5.0)
    trainer.build(next(iter(batches)))
    loss, _ = trainer._train_step(next(iter(strategy.experimental_distribute_dataset(batches))))
    return float(loss)


def test_a_second_mirrored_strategy_in_one_process_trains():
    # Gradient all-reductions on a first strategy, then LDA's all-gather on a second one. With
    # the keys every MirroredStrategy starts from, the gather met the first strategy's
    # reduction under the same collective key and the runtime aborted ("Collective instance
    # 100 expected type 0 ... got type 2").
    corpus = data.load("synthetic_hmm")
    tokens = corpus.dataset("train", "stream", 4, seq_len=8, repeat=True)
    assert np.isfinite(one_step(lambda: RNNLM(len(corpus.vocab), 8, 8), tokens, 4))
    counts = tf.data.Dataset.from_tensor_slices(
        {"counts": np.random.default_rng(0).poisson(1.0, (8, 12)).astype(np.float32)}).batch(4)
    model_fn = lambda: LatentDirichletAllocation(12, 3, num_documents=8)
    assert np.isfinite(one_step(model_fn, counts.repeat(), 4))


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: default, mirrored, multi_worker"):
        make_strategy("tpu")
