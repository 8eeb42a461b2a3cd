"""Mixed precision (`--mixed_precision=bfloat16`, issue 17 item 4): every model trains under
Keras' `mixed_bfloat16` policy with the trainer.

For each model of `tflv.models.MODELS`, built from a tiny corpus as the trainer builds it
(`from_corpus`): its layers compute in bfloat16 while every variable is float32; its loss is
float32; it equals, to bfloat16's precision, the loss of the float32 model holding the same
weights (the same function, computed in lower precision: the casts to float32 sit before the
softmaxes, KL terms and recursions, so nothing is lost there); a few training steps give finite
losses; and the process' dtype policy is float32 again afterwards. End to end (slow): a
bfloat16 run's checkpoint holds float32 variables, and its SavedModel serves float32 outputs
equal to the float32 model's restored from that checkpoint.
"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import data
from tflv.models import MODELS
from trainers.loop import Trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = dict(embed_dim=8, hidden_dim=8, latent_dim=4, num_topics=3, num_states=4,
             num_components=2, num_softmaxes=2, summary_length=2, kl_warmup_steps=10,
             iw_samples=0)
SLOW = {"seq2seq", "latent_attention", "copy_attention", "latent_summary", "hmm", "neural_hmm",
        "factorial_hmm"}  # over 10 s each on 2 cores


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Tiny corpora: synthetic_hmm, and generated `text:` (for bags of words) and `parallel:`."""
    root = tmp_path_factory.mktemp("corpora")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    (root / "text").mkdir()
    (root / "text" / "train.txt").write_text(
        "".join(" ".join(rng.choice(words[:20], rng.integers(3, 12))) + "\n" for _ in range(80)))
    (root / "parallel").mkdir()
    pairs = [rng.choice(words, rng.integers(2, 8)) for _ in range(80)]
    (root / "parallel" / "train.src").write_text("".join(" ".join(x) + "\n" for x in pairs))
    (root / "parallel" / "train.tgt").write_text("".join(" ".join(x[::-1]) + "\n" for x in pairs))
    return {"bow": f"text:{root / 'text'}", "parallel": f"parallel:{root / 'parallel'}"}


def trainer_and_batches(model, corpora, mixed_precision):
    cls = MODELS[model]
    corpus = data.load(corpora.get(cls.input_form, "synthetic_hmm"))
    config = cls.Config.pick(SMALL)
    keras.utils.set_random_seed(0)
    trainer = Trainer(lambda: cls.from_corpus(corpus, config), tf.distribute.get_strategy(),
                      global_batch_size=4, learning_rate=1e-3, clip_norm=5.0,
                      mixed_precision=mixed_precision, jit_compile="false")
    options = {"seq_len": 8} if cls.input_form == "stream" else {}
    batches = iter(corpus.dataset("train", cls.input_form, 4, shuffle=True, seed=0, repeat=True,
                                  **options))
    trainer.build(next(batches))
    return trainer, batches


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m
                                   for m in MODELS])
def test_every_model_trains_under_mixed_bfloat16(model, corpora):
    trainer, batches = trainer_and_batches(model, corpora, "bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the policy was set for the build only
    layers = list(trainer.model._flatten_layers(include_self=True))  # lda: no sublayers
    assert any(layer.compute_dtype == "bfloat16" for layer in layers)
    assert {v.dtype for v in trainer.model.trainable_variables} <= {"float32"}  # lda: none
    assert not [v.path for v in trainer.model.variables if "16" in str(v.dtype)]

    batch = next(batches)
    mixed_loss = trainer.model.objective(batch, training=False).loss
    assert mixed_loss.dtype == tf.float32
    reference, _ = trainer_and_batches(model, corpora, "float32")
    assert all(layer.compute_dtype == "float32"
               for layer in reference.model._flatten_layers(include_self=True))
    for target, source in zip(reference.model.variables, trainer.model.variables):
        target.assign(source)  # the same weights (and seed states: the same noise)
    exact_loss = reference.model.objective(batch, training=False).loss
    # bfloat16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.002 per operation).
    np.testing.assert_allclose(mixed_loss.numpy(), exact_loss.numpy(), rtol=0.05, atol=0.05)

    losses = [float(trainer._train_step(next(batches))[0]) for _ in range(3)]
    assert np.all(np.isfinite(losses)), losses
    assert trainer.step == 3


@pytest.mark.slow
def test_bfloat16_run_checkpoints_float32_and_serves_float32(tmp_path):
    """The CLI end to end: a sentence_vae run under --mixed_precision=bfloat16 writes float32
    variables only, and its export's `score` is float32 and equals the float32 model's restored
    from the run's checkpoint (`tflv-export` of the same run)."""
    common = ["--model=sentence_vae", "--dataset=synthetic_hmm", "--embed_dim=8",
              "--hidden_dim=8", "--latent_dim=2", "--batch_size=8", "--eval_batch_size=100",
              "--iw_samples=0"]
    run = subprocess.run([sys.executable, "-m", "trainers.train", *common, "--train_steps=3",
                          "--mixed_precision=bfloat16", f"--model_dir={tmp_path / 'run'}",
                          f"--export_dir={tmp_path / 'served'}"], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads([l for l in run.stdout.splitlines() if l.startswith("RESULT ")][0][7:])
    assert np.isfinite(result["nll"])
    dtypes = tf.train.load_checkpoint(str(tmp_path / "run")).get_variable_to_dtype_map()
    floats = {name: dtype for name, dtype in dtypes.items() if dtype.is_floating}
    assert floats and set(floats.values()) == {tf.float32}, floats
    export = subprocess.run([sys.executable, "-m", "trainers.export",
                             f"--model_dir={tmp_path / 'run'}",
                             f"--export_dir={tmp_path / 'reference'}"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr[-3000:]
    texts = tf.constant(["a b c", "d e"])
    served = tf.saved_model.load(str(tmp_path / "served")).signatures["score"](text=texts)
    reference = tf.saved_model.load(str(tmp_path / "reference")).signatures["score"](text=texts)
    for name, value in served.items():
        if value.dtype.is_floating:
            assert value.dtype == tf.float32, name
            np.testing.assert_allclose(value.numpy(), reference[name].numpy(), rtol=1e-6,
                                       err_msg=name)
