"""The commands explain themselves, are quiet by default, and their defaults agree.

- `--help` of every entry point lists its own flags first, and `tflv-train --model=M --help`
  groups the model hyperparameters so that every hyperparameter a model reads
  (the config fields `from_corpus(..., read=)` reports, the model built from its flags' defaults) is listed under it.
- A run prints none of TensorFlow's start-up lines (oneDNN, CUDA, absl pre-init), and prints one
  line naming the devices and the strategy (`--help` of the installed commands, and
  `--verbosity=0` bringing the lines back: tests/test_packaging.py).
- `--kl_warmup_steps` defaults to a fraction of `--train_steps`, so the annealed KL weight
  reaches 1 within training; a resumed run keeps the value it recorded.
- `tflv-eval` reproduces the metrics `tflv-train` printed for the same checkpoint.
- The collapse warning names only flags the model reads.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import data
import trainers.evaluate  # noqa: F401 — defines --eval_splits
import trainers.export  # noqa: F401
import trainers.sample  # noqa: F401 — defines the sampling flags
import trainers.run  # noqa: F401
import trainers.train  # noqa: F401
from tflv.models import MODELS
from trainers import cli, collapse
from trainers import flags as tflv_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = tflv_flags.FLAGS
TF_STARTUP = re.compile(r"oneDNN|cuInit|cuda drivers|absl::InitializeLog|cpu_feature_guard")


def quiet_env():
    """The environment of a user's shell: without the TF_CPP_MIN_LOG_LEVEL conftest.py sets."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def flags_listed(text):
    return re.findall(r"^  --(\w+):", text, re.M)


def test_every_console_script_exists():
    import importlib
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        scripts = re.findall(r'"(tflv-\w+)=([\w.]+):(\w+)"', f.read())
    assert {name for name, _, _ in scripts} == {"tflv-train", "tflv-eval", "tflv-export"}
    for name, module, function in scripts:
        assert callable(getattr(importlib.import_module(module), function)), name


def test_verbosity_is_read_before_absl_parses():
    assert cli.verbosity_of(["tflv-train", "--model=hmm"]) is None
    assert cli.verbosity_of(["tflv-train", "--verbosity=0"]) == 0
    assert cli.verbosity_of(["tflv-train", "-v", "-1", "--model=hmm"]) == -1
    assert cli.verbosity_of(["tflv-train", "-v=2"]) == 2
    assert cli.verbosity_of(["tflv-train", "--", "--verbosity=0"]) is None
    assert cli.is_command(["-m", "--model=hmm"]) and cli.is_command(["/venv/bin/tflv-eval"])
    assert not cli.is_command(["/venv/bin/pytest", "-v"])


def test_train_help_lists_run_flags_then_the_chosen_models_hyperparameters():
    text = cli.help_text(trainers.train.__doc__, cli.train_sections(["tflv-train"]), FLAGS)
    listed = flags_listed(text)
    assert listed[0] == "model" and "Run flags:" in text
    assert set(listed) == {f.name for module in ("trainers.flags", "trainers.corpus_flags")
                           for f in FLAGS.get_flags_for_module(module)}
    assert not {"logtostderr", "only_check_args", "eval_splits", "mode"} & set(listed)
    vae = flags_listed(cli.help_text("", cli.train_sections(
        ["tflv-train", "--model=sentence_vae", "--help"]), FLAGS))
    assert {"kl_schedule", "kl_warmup_steps", "free_bits", "latent_dim", "embed_dim"} <= set(vae)
    assert not {"num_states", "num_topics", "estimator"} & set(vae)


def _built(model, corpus, **overrides):
    values = {name: FLAGS[name].default for name in tflv_flags.MODEL_FLAGS}
    values.update(kl_warmup_steps=10, **overrides)
    read = set()
    MODELS[model].from_corpus(corpus, tflv_flags.model_config(MODELS[model], values), read=read)
    return read


@pytest.mark.parametrize("model,overrides", [
    ("rnnlm", {}), ("mos_lm", {}), ("hmm", {}), ("hmm", {"hmm_training": "em"}),
    ("neural_hmm", {}), ("factorial_hmm", {}), ("mixture_lm", {}),
    ("mixture_lm", {"estimator": "score_function", "baseline": "leave_one_out",
                    "latent_samples": 2}),
    ("mixture_lm", {"estimator": "gumbel_softmax"}),
    ("sentence_vae", {"kl_schedule": "linear", "free_bits": 0.5, "flow": "iaf"}),
    ("sentence_vae", {"sa_vae_steps": 1, "word_dropout": 0.3}),
    ("sentence_vae", {"decoder": "cnn", "latent": "vmf", "skip_connections": True})])
def test_every_hyperparameter_a_model_reads_is_listed_under_it(model, overrides):
    corpus = data.load("synthetic_hmm")
    read = _built(model, corpus, **overrides)
    listed = set(flags_listed(cli.help_text("", cli.train_sections(
        ["tflv-train", f"--model={model}"]), FLAGS)))
    assert read <= listed, f"--model={model} --help omits {sorted(read - listed)}"


@pytest.mark.parametrize("module", ["trainers.evaluate", "trainers.export", "trainers.sample"])
def test_tool_help_lists_its_own_flags_first(module):
    listed = flags_listed(cli.help_text("", sys.modules[module].HELP_SECTIONS, FLAGS))
    assert listed[0] == "model_dir"
    assert not {"model", "train_steps", "logtostderr"} & set(listed)


def test_collapse_warning_names_flags_the_model_reads():
    corpus = data.load("synthetic_hmm")
    assert collapse.collapse_warning("sentence_vae", {"kl": 3.2, "active_units": 5.0}) is None
    assert collapse.collapse_warning("rnnlm", {"kl": 0.0}) is None
    warning = collapse.collapse_warning("sentence_vae", {"kl": 0.03, "active_units": 2.0})
    assert "KL per example 0.03" in warning
    assert "0 active units" in collapse.collapse_warning("sentence_vae",
                                                         {"kl": 1.0, "active_units": 0.0})
    named = set(re.findall(r"--(\w+)", warning))
    gaussian = {"kl_schedule": "linear", "free_bits": 0.5, "word_dropout": 0.3, "sa_vae_steps": 10}
    other = {"decoder": "cnn", "skip_connections": True, "latent": "vmf"}  # no SA-VAE with vMF
    assert named - {"kl_warmup_steps"} == set(gaussian) | set(other)
    assert named <= _built("sentence_vae", corpus, **gaussian) | _built("sentence_vae", corpus,
                                                                         **other)


def test_default_kl_warmup_is_a_fraction_of_the_training_steps(tmp_path):
    from tflv.vi.schedules import kl_weight
    for steps in (1, 7, 1000, 250000):
        warmup = trainers.run.kl_warmup_steps(str(tmp_path), None,
                                              tflv_flags.default_kl_warmup_steps(steps))
        assert 1 <= warmup <= steps
        for schedule in ("linear", "sigmoid"):  # the annealed weight reaches 1 within training
            assert float(kl_weight(schedule, steps, warmup)) > 0.99
    assert trainers.run.kl_warmup_steps(str(tmp_path), 300, 50) == 300  # the flag wins
    # a resumed run keeps the warm-up it recorded, whatever its new --train_steps
    (tmp_path / "tflv_run.json").write_text(json.dumps({"hparams": {"kl_warmup_steps": 2}}))
    assert trainers.run.kl_warmup_steps(str(tmp_path), None, 500) == 2


@pytest.mark.slow
def test_quiet_run_names_devices_records_warmup_and_eval_repeats_its_metrics(tmp_path):
    def command(module, *args):
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=quiet_env(),
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert not TF_STARTUP.search(proc.stderr), proc.stderr[-3000:]
        line, = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        return proc, json.loads(line[len("RESULT "):])

    proc, trained = command(
        "trainers.train", "--model=sentence_vae", "--dataset=synthetic_hmm", "--embed_dim=8",
        "--hidden_dim=8", "--latent_dim=2", "--batch_size=8", "--eval_batch_size=100",
        "--iw_samples=0", "--kl_schedule=linear", f"--model_dir={tmp_path}", "--train_steps=4")
    assert re.search(r"^devices: CPU .*strategy: default \(1 replica", proc.stdout, re.M)
    with open(tmp_path / "tflv_run.json") as f:
        assert json.load(f)["hparams"]["kl_warmup_steps"] == 2  # half of --train_steps
    _, evaluated = command("trainers.evaluate", f"--model_dir={tmp_path}",
                           "--eval_batch_size=100")
    assert evaluated["step"] == trained["step"] == 4
    for name in ("kl", "valid_kl", "active_units"):  # closed-form KL, posterior means
        np.testing.assert_allclose(evaluated[name], trained[name], rtol=1e-5)
