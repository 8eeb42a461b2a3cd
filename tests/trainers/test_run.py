"""`trainers.run` from Python, without flags: a run described, built over a folder of text,
checkpointed and recorded, then restored from its directory alone with the same weights and the
same metrics; a directory that holds no run is refused by name. (That trainers.run imports no
flag is checked by tests/test_layering.py.)"""
import numpy as np
import pytest
import tensorflow as tf

from trainers import run as run_lib

WORDS = "the a cat dog sat ran on mat big small".split()


def corpus_folder(tmp_path, seed: int, lengths: tuple[int, int], count: int):
    """A `text:` folder whose train.txt holds `count` random sentences of WORDS, of lengths in
    [lengths[0], lengths[1])."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "train.txt").write_text("\n".join(
        " ".join(rng.choice(WORDS, rng.integers(*lengths))) for _ in range(count)) + "\n")
    return folder


def test_a_run_restores_from_its_directory_with_its_weights_and_metrics(tmp_path):
    from trainers import run_flags  # only for the hyperparameters' defaults
    from trainers.checkpoints import Checkpoints
    from trainers.run_record import claim_model_dir

    folder = corpus_folder(tmp_path, seed=0, lengths=(2, 9), count=60)
    hparams = {**run_flags.hparam_defaults(), "embed_dim": 8, "hidden_dim": 8}
    described = run_lib.describe_run(
        "rnnlm", f"text:{folder}", hparams=hparams, batch_size=8, seed=0, seq_len=6,
        max_length=None, train_steps=10, learning_rate=1e-2, learning_rate_schedule="constant",
        clip_norm=5.0)
    corpus, trainer, _ = run_lib.make_trainer(described, run_lib.load_corpus(described),
                                              tf.distribute.get_strategy())
    assert described["sequence"] == {"seq_len": 6}  # the stream's setting only
    assert {"embed_dim", "hidden_dim"} <= set(described["hparams"]) < set(hparams)  # read ones
    for variable in trainer.model.trainable_variables:  # weights no fresh model has
        variable.assign(variable + tf.random.stateless_normal(variable.shape, [1, 2]))
    model_dir = str(tmp_path / "run")
    claim_model_dir(model_dir, described, corpus)
    Checkpoints(trainer.checkpoint, model_dir).save(step=1)

    run, restored_corpus, restored = run_lib.restore_run(model_dir)
    assert run["hparams"] == described["hparams"] and run["dataset"] == described["dataset"]
    for got, want in zip(restored.model.weights, trainer.model.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)
    writer = tf.summary.create_noop_writer()
    metrics = [run_lib.evaluate_splits(t, c, writer, run["sequence"], ("valid", "test"), 16)
               for t, c in ((trainer, corpus), (restored, restored_corpus))]
    assert set(metrics[0]) >= {"nll", "valid_nll"} and metrics[0] == metrics[1]


def test_a_directory_without_a_run_or_checkpoint_is_refused_by_name(tmp_path):
    with pytest.raises(run_lib.RunError, match=f"{tmp_path} is not a trained run"):
        run_lib.restore_run(str(tmp_path))
    (tmp_path / "tflv_run.json").write_text('{"model": "rnnlm", "dataset": "ptb"}')
    with pytest.raises(run_lib.RunError, match="lacks dataset_options, batch_size, seed"):
        run_lib.restore_run(str(tmp_path))


def test_bucket_width_batches_sentences_of_one_length_bucket_and_is_recorded_only_when_set(
        tmp_path):
    from trainers import run_flags

    folder = corpus_folder(tmp_path, seed=1, lengths=(1, 25), count=200)
    hparams = {**run_flags.hparam_defaults(), "embed_dim": 8, "hidden_dim": 8}

    def described(width):
        return run_lib.describe_run(
            "sentence_vae", f"text:{folder}", hparams=hparams, batch_size=8, seed=0, seq_len=6,
            max_length=None, train_steps=10, learning_rate=1e-2,
            learning_rate_schedule="constant", clip_norm=5.0, bucket_width=width)

    assert "bucket_width" not in described(0)["sequence"]  # records from before it still match
    widths = {}
    for width in (0, 5):
        run = described(width)
        _, _, dataset = run_lib.make_trainer(run, run_lib.load_corpus(run),
                                             tf.distribute.get_strategy())
        assert run["sequence"] == {"max_length": None, **({"bucket_width": 5} if width else {})}
        lengths = [b["lengths"].numpy() for b in dataset.take(50)]
        widths[width] = np.mean([batch.max() for batch in lengths])
        if width:  # each batch's lengths (<eos> included) within one bucket [5i, 5i + 5)
            assert all(len(set(batch // width)) == 1 for batch in lengths), lengths
    assert widths[5] < 0.8 * widths[0]  # padded width per batch
