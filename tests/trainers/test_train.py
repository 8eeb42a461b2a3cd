"""End-to-end trainer tests: the real command line, in subprocesses, on synthetic_hmm and PTB.

Covers: the RESULT line; mirrored (2 logical CPUs) = default loss curve; exact resumption
(train N, then resume to 2N == train 2N); SIGKILL mid-training then resume; a corrupt newest
checkpoint skipped by name; another run's --model_dir refused; unknown names listed; unused model
flags refused; a run recorded before some of its hyperparameters existed resumed and exported;
SavedModel export scored in a fresh process where tflv cannot be imported.

Faults (issue 18): an empty split is an error naming its file, never a metric over 0 tokens; a
second trainer on a busy model_dir, a stale lock, a lost checkpoint index (in the SIGKILL test); a
resume that would change the batch size, seed, sequence length or vocabulary is refused listing
the differences, while the learning rate may change; export uses the run's saved vocabulary
whatever the data root holds now; non-finite weights are never saved and a rerun with a lower
learning rate resumes the last finite checkpoint; a killed multi-worker worker ends the job on
every worker with a message within a bounded time, and restarting the workers resumes.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--model=rnnlm", "--dataset=synthetic_hmm", "--embed_dim=8", "--hidden_dim=16",
        "--batch_size=8", "--seq_len=10", "--eval_batch_size=32", "--log_every=1"]


def train(*args, check=True, timeout=240):
    proc = subprocess.run([sys.executable, "-m", "trainers.train", *TINY, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"trainer failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def result_of(proc):
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0][len("RESULT "):])


def losses_of(proc):
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r"^step (\d+)/\d+  loss ([-\d.e+]+)", proc.stdout, re.M)}


def test_result_line_and_metrics_are_consistent(tmp_path):
    result = result_of(train("--train_steps=3", f"--model_dir={tmp_path}"))
    assert result["step"] == 3
    np.testing.assert_allclose(result["ppl"], np.exp(result["nll"]), rtol=1e-6)
    # Untrained on 12 symbols (+4 specials): perplexity near the vocabulary size, not above 2x.
    assert 5 < result["ppl"] < 40
    assert os.path.exists(tmp_path / "tflv_run.json")
    assert any(name.startswith("events") for name in os.listdir(tmp_path / "summaries"))


def test_mirrored_matches_default(tmp_path):
    default = losses_of(train("--train_steps=4", f"--model_dir={tmp_path / 'a'}"))
    mirrored = losses_of(train("--train_steps=4", f"--model_dir={tmp_path / 'b'}",
                               "--strategy=mirrored", "--num_cpu_devices=2"))
    assert sorted(default) == [1, 2, 3, 4]
    for step in default:
        np.testing.assert_allclose(mirrored[step], default[step], rtol=1e-4)


@pytest.mark.slow  # ~24 s on 2 cores; in process, `make test` keeps test_jit_compile's
# test_resume_under_xla_is_exact
def test_resume_is_exact(tmp_path):
    straight = result_of(train("--train_steps=6", "--checkpoint_every=3",
                               f"--model_dir={tmp_path / 'straight'}"))
    train("--train_steps=3", "--checkpoint_every=3", f"--model_dir={tmp_path / 'split'}")
    resumed = train("--train_steps=6", "--checkpoint_every=3", f"--model_dir={tmp_path / 'split'}")
    assert "resumed from" in resumed.stdout and "at step 3" in resumed.stdout
    assert sorted(losses_of(resumed)) == [4, 5, 6]
    np.testing.assert_allclose(result_of(resumed)["nll"], straight["nll"], rtol=1e-5)


@pytest.mark.slow  # ~25 s on 2 cores
def test_sigkill_then_resume(tmp_path):
    # Also (issue 18): a second trainer on the busy model_dir is refused at once; the killed
    # run's lock is stale and taken over; a save killed midway leaves a ckpt-N_temp folder,
    # removed; a lost `checkpoint` index no longer restarts from step 0 (overwriting the
    # checkpoints): the newest checkpoint is found from the files.
    model_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "trainers.train", *TINY, "--train_steps=100000",
                             "--checkpoint_every=5", f"--model_dir={model_dir}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (model_dir / "checkpoint").exists():
        time.sleep(0.5)
    second = train("--train_steps=100000", f"--model_dir={model_dir}", check=False)
    assert proc.poll() is None, "the first trainer ended early"
    assert second.returncode != 0 and "RESULT" not in second.stdout
    assert f"in use by another trainer (pid {proc.pid}" in second.stderr
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (model_dir / "checkpoint").exists(), "no checkpoint written before the kill"
    (model_dir / "checkpoint").unlink()
    # The newest complete checkpoint (it may be newer than the index, killed before updating it).
    saved = max(int(re.fullmatch(r"ckpt-(\d+)\.index", p.name).group(1))
                for p in model_dir.glob("ckpt-*.index"))
    (model_dir / f"ckpt-{saved + 5}_temp" / "part-00000-of-00001").mkdir(parents=True)
    resumed = train(f"--train_steps={saved + 2}", f"--model_dir={model_dir}",
                    "--checkpoint_every=5")
    assert f"at step {saved}" in resumed.stdout
    assert result_of(resumed)["step"] == saved + 2
    assert "took over the stale lock" in resumed.stderr and f"pid {proc.pid}" in resumed.stderr
    assert "the checkpoint index was missing" in resumed.stderr
    assert not list(model_dir.glob("*_temp")) and not (model_dir / "tflv.lock").exists()


@pytest.mark.slow  # ~21 s on 2 cores; in process, `make test` keeps
# test_checkpoints' unreadable-checkpoint tests
def test_corrupt_checkpoint_falls_back_by_name(tmp_path):
    model_dir = tmp_path / "corrupt"
    train("--train_steps=4", "--checkpoint_every=2", f"--model_dir={model_dir}")
    data_file = next(p for p in model_dir.iterdir() if p.name.startswith("ckpt-4.data"))
    data_file.write_bytes(data_file.read_bytes()[:20])
    proc = train("--train_steps=5", f"--model_dir={model_dir}")
    assert "ckpt-4" in proc.stderr and "unreadable" in proc.stderr
    assert "at step 2" in proc.stdout


@pytest.mark.slow  # ~25 s on 2 cores
def test_refuses_another_runs_model_dir_and_bad_names(tmp_path):
    train("--train_steps=1", f"--model_dir={tmp_path}")
    other = train("--train_steps=1", f"--model_dir={tmp_path}", "--hidden_dim=32", check=False)
    assert other.returncode != 0 and "holds a different run" in other.stderr
    assert "hidden_dim" in other.stderr
    unknown = train("--model=nope", f"--model_dir={tmp_path / 'nope'}", check=False)
    assert unknown.returncode != 0 and "valid models" in unknown.stderr and "rnnlm" in unknown.stderr
    unused = train("--latent_dim=3", f"--model_dir={tmp_path / 'unused'}", check=False)
    assert unused.returncode != 0 and "does not use --latent_dim" in unused.stderr


@pytest.mark.slow
def test_runs_recorded_before_a_hyperparameter_existed(tmp_path):
    # A run description without hyperparameters added to its model since: they default, so the
    # run resumes, exports and is still told apart from a run that sets them otherwise.
    model_dir = tmp_path / "old"
    train("--train_steps=2", f"--model_dir={model_dir}")
    run = json.loads((model_dir / "tflv_run.json").read_text())
    assert run["hparams"].pop("tie_embeddings") is False and run["hparams"].pop("dropout") == 0
    (model_dir / "tflv_run.json").write_text(json.dumps(run))
    resumed = train("--train_steps=3", f"--model_dir={model_dir}")
    assert "at step 2" in resumed.stdout and result_of(resumed)["step"] == 3
    other = train("--train_steps=4", f"--model_dir={model_dir}", "--dropout=0.1", check=False)
    assert other.returncode != 0 and "holds a different run" in other.stderr
    assert "'dropout': 0.0" in other.stderr and "'dropout': 0.1" in other.stderr
    exported = subprocess.run(
        [sys.executable, "-m", "trainers.export", f"--model_dir={model_dir}",
         f"--export_dir={tmp_path / 'export'}"], cwd=REPO, capture_output=True, text=True,
        timeout=240)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (tmp_path / "export" / "saved_model.pb").exists()


def test_export_serves_text_without_tflv(tmp_path):
    export_dir = tmp_path / "export"
    train("--train_steps=2", f"--model_dir={tmp_path / 'run'}", f"--export_dir={export_dir}")
    script = f"""
import sys, json
for name in ("tflv", "trainers", "data"):
    sys.modules[name] = None  # importing them now fails
import tensorflow as tf
m = tf.saved_model.load({str(export_dir)!r})
out = m.signatures["score"](text=tf.constant(["s1 s2 s3", "s4"]))
samples = m.signatures["sample"](num_samples=tf.constant(3), max_length=tf.constant(5),
                                 temperature=tf.constant(1.0), seed=tf.constant([1, 2]))
print(json.dumps({{"log_prob": out["log_prob"].numpy().tolist(),
                  "tokens": out["tokens"].numpy().tolist(),
                  "samples": [s.decode() for s in samples["text"].numpy()]}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    assert served["tokens"] == [4.0, 2.0]  # three or one token(s), plus <eos>
    assert len(served["samples"]) == 3
    # The in-memory model (restored from the same checkpoint) gives the same numbers.
    in_memory = _score_in_process(tmp_path / "run", ["s1 s2 s3", "s4"])
    np.testing.assert_allclose(served["log_prob"], in_memory, rtol=1e-5)


@pytest.mark.slow  # ~75 s on one core (trains, evaluates, exports)
def test_a_neural_template_run_keeps_the_templates_of_its_final_evaluation(tmp_path):
    # Its checkpoints are saved during training, before the final evaluation extracts the
    # templates; the run's later export (`tflv-export`) served placeholder templates.
    import tensorflow as tf

    from tflv.models.neural_template import placeholder_templates

    run, export_dir = tmp_path / "run", tmp_path / "export"
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--model=neural_template", "--dataset=e2e",
         "--embed_dim=8", "--hidden_dim=8", "--num_states=4", "--num_templates=3",
         "--template_examples=8", "--bleu_max_examples=2", "--beam_size=1", "--batch_size=4",
         "--eval_batch_size=16", "--max_eval_batches=1", "--train_steps=1",
         f"--model_dir={run}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ckpt-1 again with the weights the evaluation set" in proc.stdout
    table = tf.train.load_checkpoint(str(run / "ckpt-1")).get_tensor(
        "model/template_table/.ATTRIBUTES/VARIABLE_VALUE")
    assert not np.array_equal(table, placeholder_templates(3, table.shape[1], 4)), table[:, :8]
    exported = subprocess.run([sys.executable, "-m", "trainers.export", f"--model_dir={run}",
                               f"--export_dir={export_dir}"], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "holds none yet" not in exported.stdout  # the checkpoint's templates are exported


def _score_in_process(model_dir, texts):
    import tensorflow as tf

    import data
    from trainers.export import ServingModule
    from tflv.models import RNNLM

    corpus = data.load("synthetic_hmm")
    model = RNNLM(vocab_size=corpus.info["vocab_size"], embed_dim=8, hidden_dim=16)
    serving = ServingModule(model, corpus)
    model.objective(serving.batcher(tf.constant(texts)))
    tf.train.Checkpoint(model=model).read(
        tf.train.latest_checkpoint(str(model_dir))).expect_partial()
    return serving.score(tf.constant(texts))["log_prob"].numpy()


def _free_ports(n):
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_two_processes_on_loopback(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "trainers.train", *TINY, "--strategy=multi_worker",
             "--train_steps=3", f"--model_dir={tmp_path}"], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, f"{out}\n{err}"
    chief, other = (result_of(subprocess.CompletedProcess([], 0, out, err))
                    for out, err in outputs)
    assert chief["step"] == other["step"] == 3
    np.testing.assert_allclose(chief["nll"], other["nll"], rtol=1e-5)
    assert tf_latest(tmp_path).endswith("ckpt-3")
    assert not (tmp_path / ".worker1").exists()
    assert len(os.listdir(tmp_path / "summaries")) == 1  # the chief's events file alone


def _start_worker(cluster, index, model_dir, *args):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))
    return subprocess.Popen(
        [sys.executable, "-m", "trainers.train", *TINY, "--strategy=multi_worker",
         f"--model_dir={model_dir}", *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_multi_worker_killed_worker_ends_the_job_and_a_restart_resumes(tmp_path):
    # Before: the chief died with a collective-ops traceback and a worker restarted alone waited
    # silently for ever. Now every worker stops with a message within a bounded time (the
    # coordination service's heartbeat, --worker_timeout), and restarting all of them resumes.
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [_start_worker(cluster, i, tmp_path, "--train_steps=100000",
                             "--checkpoint_every=2", "--worker_timeout=60") for i in range(2)]
    deadline = time.time() + 180
    while time.time() < deadline and not (tmp_path / "checkpoint").exists():
        time.sleep(0.5)
    assert (tmp_path / "checkpoint").exists(), workers[0].communicate(timeout=5)
    workers[1].send_signal(signal.SIGKILL)
    killed = time.time()
    _, err = workers[0].communicate(timeout=90)
    assert workers[0].returncode == 3 and time.time() - killed < 90
    assert "the multi-worker job lost a worker" in err and "Restart every worker" in err
    # The killed worker restarted alone finds no job: it stops after --worker_timeout.
    alone = _start_worker(cluster, 1, tmp_path, "--train_steps=100000", "--worker_timeout=5")
    _, err = alone.communicate(timeout=120)
    assert alone.returncode == 3 and "could not join the other workers within " \
        "--worker_timeout=5s" in err
    saved = int(tf_latest(tmp_path).rsplit("-", 1)[1])
    restarted = [_start_worker(cluster, i, tmp_path, f"--train_steps={saved + 2}")
                 for i in range(2)]
    for proc in restarted:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
        assert f"at step {saved}" in out and result_of(
            subprocess.CompletedProcess([], 0, out, err))["step"] == saved + 2


def tf_latest(model_dir):
    import tensorflow as tf
    return tf.train.latest_checkpoint(str(model_dir))


def test_empty_test_split_is_an_error_naming_the_file(tmp_path):
    # It used to train, then report {"nll": 0.0, "ppl": 1.0} on the empty test file, exit 0.
    (tmp_path / "ptb").mkdir()
    for split, text in (("train", "a b c\nb c\n"), ("valid", "a b\n"), ("test", "")):
        (tmp_path / "ptb" / f"ptb.{split}.txt").write_text(text)
    proc = train("--dataset=ptb", f"--data_dir={tmp_path}", "--train_steps=1",
                 f"--model_dir={tmp_path / 'run'}", check=False)
    assert proc.returncode != 0 and "RESULT" not in proc.stdout
    assert f"{tmp_path / 'ptb' / 'ptb.test.txt'}:1: expected at least one line" in proc.stderr


@pytest.mark.slow
def test_resume_refuses_changed_meaning_and_allows_a_new_learning_rate(tmp_path):
    train("--train_steps=2", "--checkpoint_every=2", f"--model_dir={tmp_path}")
    changed = train("--train_steps=3", f"--model_dir={tmp_path}", "--batch_size=4", "--seed=1",
                    "--seq_len=12", check=False)
    assert changed.returncode != 0 and "RESULT" not in changed.stdout
    for difference in ("batch_size: held 8, asked 4", "seed: held 0, asked 1",
                       "sequence: held {'seq_len': 10}, asked {'seq_len': 12}"):
        assert difference in changed.stderr
    # Weights that overflow (an absurd step size) are never saved: the run stops naming the step.
    overflow = train("--train_steps=4", f"--model_dir={tmp_path}", "--learning_rate=1e39",
                     "--checkpoint_every=1", check=False)
    assert overflow.returncode != 0 and "step 3: " in overflow.stderr
    assert "not finite" in overflow.stderr and "ckpt-2 is kept" in overflow.stderr
    assert tf_latest(tmp_path).endswith("ckpt-2")
    rerun = train("--train_steps=3", f"--model_dir={tmp_path}", "--learning_rate=1e-3")
    assert "at step 2" in rerun.stdout and np.isfinite(result_of(rerun)["nll"])
    record = json.loads((tmp_path / "tflv_run.json").read_text())
    assert record["training"]["learning_rate"] == 1e-3 and record["batch_size"] == 8


@pytest.mark.slow
def test_vocabulary_is_the_runs_whatever_the_data_root_holds(tmp_path):
    ptb = tmp_path / "data" / "ptb"
    ptb.mkdir(parents=True)
    for split, text in (("train", "a b c\nb c a\n"), ("valid", "a b\n"), ("test", "c a\n")):
        (ptb / f"ptb.{split}.txt").write_text(text)
    run = ["--dataset=ptb", f"--data_dir={tmp_path / 'data'}", f"--model_dir={tmp_path / 'run'}"]
    train("--train_steps=1", *run)
    assert (tmp_path / "run" / "vocab" / "vocab.txt").read_text().split("\n")[4:7] == \
        ["a", "b", "c"]
    with open(ptb / "ptb.train.txt", "a") as f:  # one appended line renumbers every word
        f.write("zz zz zz c c\n")
    resumed = train("--train_steps=2", *run, check=False)
    assert resumed.returncode != 0 and "RESULT" not in resumed.stdout
    assert "vocab: 7 ids saved, 8 in the data now; 3 words renumbered; new words ['zz']" \
        in resumed.stderr
    exported = subprocess.run(
        [sys.executable, "-m", "trainers.export", f"--model_dir={tmp_path / 'run'}",
         f"--data_dir={tmp_path / 'data'}", f"--export_dir={tmp_path / 'export'}"], cwd=REPO,
        capture_output=True, text=True, timeout=240)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    score = tf_load(tmp_path / "export").signatures["score"]
    log_prob = score(text=tf_constant(["a zz", "a <unk>", "a c"]))["log_prob"].numpy()
    assert log_prob[0] == log_prob[1] != log_prob[2]  # 'zz' is not a word of the run


def tf_load(path):
    import tensorflow as tf
    return tf.saved_model.load(str(path))


def tf_constant(values):
    import tensorflow as tf
    return tf.constant(values)


@pytest.mark.parametrize("model, recipe", [("prodlda", "nvdm"), ("nvdm", None), ("gsm", None)])
def test_a_topic_run_recorded_before_recipes_keeps_the_recipe_it_was_built_with(model, recipe):
    # Before issue 19 prodlda trained by NVDM's settings; the new default recipe
    # (srivastava_sutton) would rebuild such a run with other layers and fail to restore it.
    from trainers import run_flags  # imports the flags; parses none
    from trainers.run import with_new_hparams
    old = {"model": model, "dataset": "news20", "hparams": {"num_topics": 5}}
    defaults = run_flags.hparam_defaults()
    hparams = with_new_hparams(old, {name: defaults[name] for name in ("topic_recipe",
                                                                       "num_topics")})["hparams"]
    assert hparams == {"num_topics": 5, "topic_recipe": recipe}


def test_a_neural_template_run_recorded_before_new_defaults_keeps_its_settings():
    # The defaults became the paper's uniform lengths; an older run has learned length weights
    # in its checkpoints and must be rebuilt with them.
    from trainers import run_flags  # imports the flags; parses none
    from trainers.run import with_new_hparams
    defaults = run_flags.hparam_defaults()
    assert defaults["template_uniform_lengths"] is True
    old = {"model": "neural_template", "dataset": "e2e", "hparams": {"num_states": 16}}
    assert with_new_hparams(old, {"template_uniform_lengths": True})["hparams"] == {
        "num_states": 16, "template_uniform_lengths": False}
    # it copied through a gate, whose weights its checkpoints hold; new runs copy jointly
    assert defaults["template_copy"] == "joint"
    assert with_new_hparams(old, {"template_copy": "joint"})["hparams"]["template_copy"] == "gate"
    # it counted its templates over the first 1,000 training sentences; new runs count all
    assert defaults["template_examples"] == 0
    assert with_new_hparams(old, {"template_examples": 0})["hparams"]["template_examples"] == 1000
