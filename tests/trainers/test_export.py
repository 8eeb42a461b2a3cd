"""The export serves text as training read it (issue 20 item 2, issue 21 item 3).

- For every form (stream, sentences, tokens, bow from `text:`, parallel from `parallel:`, tagged
  from `tagged:`), under non-default settings (punctuation tokens, lower-casing, a vocabulary cap),
  the batch `tflv.export.TextBatcher` builds in the graph from the raw lines of the valid file
  equals the training pipeline's batch of that file (`corpus.dataset`), and `unknown_words`
  counts the out-of-vocabulary words of a reference tokenisation written here with Python's `re`.
- A model built and trained in Python (no flags) on `data.load("text:DIR")` is exported by
  `tflv.export.export_saved_model`; the loaded SavedModel's `score` is the in-memory model's
  −nll of the same batch, and `saved_model_cli run` (a process where tflv, data and trainers
  cannot be imported) returns the same `log_prob` and `unknown_words`.
"""
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import data
from data.pipeline import STREAM_START
from tflv.export import TextBatcher, export_saved_model
from tflv.models import RNNLM

TRAIN = ["The cat sat on the mat.", "The dog, the CAT and the bird!", "A dog sat; a cat ran.",
         "the Mat was red.", "Birds sing, cats sit."]
VALID = ["THE CAT sat.", "The zebra, the dog?", "A red mat!"]
OPTIONS = dict(tokenizer="punctuation", lowercase=True, vocab_size=14, test_fraction=0)


def reference_tokens(line: str) -> list[str]:
    """Punctuation tokens of a lower-cased line, by Python's `re` (not tflv's tokenizer)."""
    return re.findall(r"\w+|[^\w\s]", line.lower())


def write(folder, name, lines):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    write(folder, "train.txt", TRAIN)
    write(folder, "valid.txt", VALID)
    return data.load(f"text:{folder}", **OPTIONS)


def batch_of(corpus, form, texts, **options):
    """The training pipeline's one batch of the valid split, as numpy."""
    batch = next(iter(corpus.dataset("valid", form, batch_size=len(texts), **options)))
    return {k: v.numpy() for k, v in batch.items()}


def served(batcher, *texts):
    return {k: v.numpy() for k, v in batcher(*[tf.constant(t) for t in texts]).items()}


def assert_same(training, serving, keys):
    for key in keys:
        np.testing.assert_array_equal(serving[key], training[key].astype(serving[key].dtype),
                                      err_msg=key)


@pytest.mark.parametrize("form", ["sentences", "tokens"])
def test_served_sequence_batch_is_the_training_batch(text_corpus, form):
    batcher = TextBatcher(text_corpus, form)
    keys = ["inputs", "targets", "mask", "lengths"] if form == "sentences" else [
        "tokens", "mask", "lengths"]
    assert_same(batch_of(text_corpus, form, VALID), served(batcher, VALID), keys)


def test_served_stream_is_the_training_stream(text_corpus):
    """Each served text is `<eos>` w_1..w_n → w_1..w_n `<eos>`, its stretch of the stream."""
    stream = batch_of(text_corpus, "stream", [0], seq_len=100)
    mask = stream["mask"][0] > 0
    out = served(TextBatcher(text_corpus, "stream"), VALID)
    rows = out["mask"] > 0
    for key in ("inputs", "targets"):
        np.testing.assert_array_equal(out[key][rows], stream[key][0][mask], err_msg=key)


def test_served_bag_of_words_is_the_training_bag(text_corpus):
    out = served(TextBatcher(text_corpus, "bow"), VALID)
    training = batch_of(text_corpus, "bow", VALID)
    assert_same(training, out, ["counts", "lengths"])
    assert out["counts"][:, :4].sum() == 0  # <unk> and the reserved ids are never counted


def test_unknown_words_are_counted(text_corpus):
    vocabulary = set(text_corpus.vocab.tokens)
    expected = [sum(t not in vocabulary for t in reference_tokens(line)) for line in VALID]
    assert expected[1] >= 2  # "zebra" and "?" are not in train
    for form in ("sentences", "bow"):
        counts = TextBatcher(text_corpus, form).unknown_words(tf.constant(VALID))
        assert counts["unknown_words"].numpy().tolist() == expected


def test_served_parallel_batch_is_the_training_batch(tmp_path):
    write(tmp_path, "train.src", TRAIN)
    write(tmp_path, "train.tgt", [line.upper() for line in reversed(TRAIN)])
    write(tmp_path, "valid.src", VALID)
    targets = ["Der Hund!", "EIN ROTER hund, ja.", "THE dog."]
    write(tmp_path, "valid.tgt", targets)
    corpus = data.load(f"parallel:{tmp_path}", **OPTIONS)
    batcher = TextBatcher(corpus, "parallel")
    keys = ["source", "source_mask", "source_lengths", "target_inputs", "target_targets",
            "target_mask", "target_lengths"]
    assert_same(batch_of(corpus, "parallel", VALID), served(batcher, VALID, targets), keys)
    counts = batcher.unknown_words(tf.constant(VALID), tf.constant(targets))
    target_vocabulary = set(corpus.target_vocab.tokens)
    assert counts["target_unknown_words"].numpy().tolist() == [
        sum(t not in target_vocabulary for t in reference_tokens(line)) for line in targets]


def test_served_tagged_batch_is_the_training_batch(tmp_path):
    rows = [[(w, "T" + str(len(w))) for w in line.split()] for line in TRAIN]
    conll = [f"{w} {t}" for sentence in rows for w, t in [*sentence, ("", "")]]
    write(tmp_path, "train.txt", [line.strip() for line in conll])
    valid = [["The", "CAT", "sat."], ["A", "Zebra"]]
    write(tmp_path, "valid.txt", [f"{w} X" if w else "" for s in valid for w in [*s, ""]])
    corpus = data.load(f"tagged:{tmp_path}", lowercase=True, test_fraction=0)
    texts = [" ".join(s) for s in valid]
    assert_same(batch_of(corpus, "tagged", texts), served(TextBatcher(corpus, "tagged"), texts),
                ["tokens", "mask", "lengths"])


def stream_model_batch(corpus):
    """The training pipeline's batch of the valid lines for a stream model: each line read as the
    stream reads it after an `<eos>` (`data.pipeline.STREAM_START`), not after `<bos>`."""
    batch = dict(next(iter(corpus.dataset("valid", "sentences", len(VALID)))))
    batch["inputs"] = tf.concat([tf.fill([len(VALID), 1], STREAM_START),
                                 batch["inputs"][:, 1:]], axis=1)
    return batch


@pytest.mark.slow  # an export and a load: ~12 s on 2 loaded cores
def test_python_model_exports_and_scores_as_in_memory(text_corpus, tmp_path):
    """No flags, no run: build, train two steps, `export_saved_model`, load, score."""
    model = RNNLM(vocab_size=text_corpus.info["vocab_size"], embed_dim=8, hidden_dim=8)
    optimizer = keras.optimizers.Adam(0.01)
    batches = text_corpus.dataset("train", "sentences", batch_size=2, shuffle=True, repeat=True)
    for batch in batches.take(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(batch, training=True).loss)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    export_dir = str(tmp_path / "export")
    export_saved_model(model, text_corpus, export_dir)
    loaded = tf.saved_model.load(export_dir)
    out = loaded.signatures["score"](text=tf.constant(VALID))
    stats = model.objective(stream_model_batch(text_corpus), training=False).stats
    np.testing.assert_allclose(out["log_prob"].numpy(), -stats["nll"].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(out["tokens"].numpy(), stats["tokens"].numpy())
    vocabulary = set(text_corpus.vocab.tokens)
    assert out["unknown_words"].numpy().tolist() == [
        sum(t not in vocabulary for t in reference_tokens(line)) for line in VALID]
    # The model's own signature (sampling) is served too.
    assert set(loaded.signatures) == {"serving_default", "score", "sample"}


# A process where tflv, data and trainers cannot be imported runs `saved_model_cli run`.
SAVED_MODEL_CLI = """
import sys
for name in ("tflv", "trainers", "data"):
    sys.modules[name] = None
from tensorflow.python.tools.saved_model_cli import main
sys.argv = ["saved_model_cli", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # a fresh TensorFlow process and an export: ~20 s on 2 loaded cores
def test_saved_model_cli_serves_the_training_pipeline(text_corpus, tmp_path):
    model = RNNLM(vocab_size=text_corpus.info["vocab_size"], embed_dim=8, hidden_dim=8)
    export_dir = str(tmp_path / "export")
    export_saved_model(model, text_corpus, export_dir)
    outdir = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", SAVED_MODEL_CLI, "run", "--dir", export_dir, "--tag_set", "serve",
         "--signature_def", "score", "--input_exprs", f"text={json.dumps(VALID)}",
         "--outdir", str(outdir), "--overwrite"],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = -model.objective(stream_model_batch(text_corpus), training=False).stats["nll"]
    np.testing.assert_allclose(np.load(outdir / "log_prob.npy"), expected, rtol=1e-5)
    vocabulary = set(text_corpus.vocab.tokens)
    assert np.load(outdir / "unknown_words.npy").tolist() == [
        sum(t not in vocabulary for t in reference_tokens(line)) for line in VALID]


def test_homotopy_reports_unknown_words_of_its_end_points(text_corpus):
    """`homotopy`, the one text signature not built by `serving.text_signature`, reports the
    unknown words of its two end points like every other."""
    from tflv.models import SentenceVAE
    model = SentenceVAE.from_corpus(text_corpus, embed_dim=4, hidden_dim=4, latent_dim=2,
                                    iw_samples=0)
    batcher = TextBatcher(text_corpus, "sentences")
    model.objective(batcher(tf.constant(VALID[:2])))
    out = model.serving_signatures(batcher)["homotopy"](
        tf.constant(VALID[:2]), tf.constant(3), tf.constant(4), tf.constant(1.0),
        tf.constant([0, 1]))
    vocabulary = set(text_corpus.vocab.tokens)
    assert out["text"].shape == (3,)
    assert out["unknown_words"].numpy().tolist() == [
        sum(t not in vocabulary for t in reference_tokens(line)) for line in VALID[:2]]
