"""LDA in the training loop: the trainer's `apply_update` hook performs exactly Hoffman et al.'s
online-VB update on the global batch, with one device or two mirrored replicas; the reported
bound is `tflv.vi.conjugate.LDA`'s per-document ELBO; λ is checkpointed. (Learning from a known
LDA is tested with the other topic models in test_topic_models.py.)"""
import numpy as np
import pytest
import tensorflow as tf

from tflv.models.lda import LatentDirichletAllocation, sample_documents
from tflv.vi.conjugate import LDA
from trainers.checkpoints import Checkpoints
from trainers.loop import Progress, Trainer
from trainers.strategy import make_strategy

K, V, ALPHA = 3, 24, 0.3


def batches(counts, batch_size):
    return tf.data.Dataset.from_tensor_slices({"counts": counts.astype(np.float32)}).batch(
        batch_size, drop_remainder=True)


def fit_with_trainer(strategy_name, counts, steps, batch_size, tmp_path):
    """Runs the trainer's loop for `steps` online-VB updates; returns the trained model."""
    model_fn = lambda: LatentDirichletAllocation(V, K, num_documents=len(counts),
                                                 doc_topic_prior=ALPHA, offset=1.0, decay=0.6)
    trainer = Trainer(model_fn, make_strategy(strategy_name), global_batch_size=batch_size,
                      learning_rate=1e-3, clip_norm=0.0)
    data = batches(counts, batch_size).repeat()
    trainer.build(next(iter(data)))
    checkpoint = tf.train.Checkpoint(model=trainer.model)
    trainer.train(data, steps, Checkpoints(checkpoint, str(tmp_path)),
                  Progress(steps, 0, tf.summary.create_noop_writer(), every=steps,
                           print_fn=lambda line: None), checkpoint_every=steps)
    assert trainer.step == steps
    return trainer.model


@pytest.fixture(scope="module")
def train_counts():
    topics = np.random.default_rng(0).dirichlet(np.full(V, 0.1), size=K)  # sparse topics [K, V]
    return sample_documents(topics, ALPHA, 200, 40, seed=0)


def test_trainer_update_is_online_vb_on_the_global_batch_on_any_strategy(train_counts, tmp_path):
    steps, batch_size = 4, 50
    reference = LDA(K, V, doc_topic_prior=ALPHA)  # same seed 0: the same initial λ
    for batch in batches(train_counts, batch_size).take(steps):
        reference.online_vb(tf.cast(batch["counts"], tf.float64), len(train_counts), offset=1.0,
                            decay=0.6)
    for strategy in ("default", "mirrored"):
        model = fit_with_trainer(strategy, train_counts, steps, batch_size, tmp_path / strategy)
        np.testing.assert_allclose(model.lda.topic_word.numpy(), reference.topic_word.numpy(),
                                   rtol=1e-9)
        assert int(model.lda.num_updates.numpy()) == steps


def test_reported_bound_is_the_conjugate_per_document_elbo(train_counts):
    model = LatentDirichletAllocation(V, K, num_documents=200, doc_topic_prior=ALPHA)
    counts = train_counts[:7]
    objective = model.objective({"counts": tf.constant(counts, tf.float32)})
    expected = model.lda.elbo(tf.constant(counts, tf.float64), per_document=True).numpy()
    np.testing.assert_allclose(objective.stats["elbo"].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(objective.loss.numpy(), -expected / counts.sum(-1), rtol=1e-6)
    assert np.all(objective.stats["kl"].numpy() >= 0)
    with pytest.raises(ValueError, match=r"counts.*\[B, 24\]"):
        model.objective({"counts": tf.zeros([2, 5])})
    with pytest.raises(ValueError, match="decay in"):
        LatentDirichletAllocation(V, K, num_documents=10, decay=0.4)


def test_checkpoint_round_trips_the_variational_topics(tmp_path):
    model = LatentDirichletAllocation(V, K, num_documents=10)
    model.apply_update({"counts": tf.ones([4, V])})
    saved = model.lda.topic_word.numpy().copy()
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    restored = LatentDirichletAllocation(V, K, num_documents=10, seed=3)
    tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(restored.lda.topic_word.numpy(), saved)
    assert int(restored.lda.num_updates.numpy()) == 1
