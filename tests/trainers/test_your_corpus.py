"""README "Your own corpus": its three commands, exactly as written there (read from README.md),
on a tiny folder of text made here, with tiny sizes appended (absl keeps a flag's last value):
train a sentence VAE with --export_dir, sample from the run, score text with the SavedModel,
which reads it by the run's text pipeline (--lowercase, --tokenizer=punctuation)."""
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_TRAIN = ["--train_steps=2", "--embed_dim=8", "--hidden_dim=8", "--latent_dim=4",
              "--iw_samples=2", "--batch_size=16", "--eval_batch_size=64", "--log_every=1"]
WORDS = "the a cat dog sat ran on mat big small".split()


def readme_commands() -> list[list[str]]:
    """The first sh block of the README's "Your own corpus" section, one argv per command
    (a backslash continues a line; a quoted argument may span lines, as a shell reads it)."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("## Your own corpus", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    return [shlex.split(chunk) for chunk in _command_chunks(block)]


def _command_chunks(block: str) -> list[str]:
    """`block` cut at the line ends that are outside quotes."""
    chunks, start, quote = [], 0, None
    for i, char in enumerate(block):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "\n":
            chunks.append(block[start:i])
            start = i + 1
    chunks.append(block[start:])
    return [c for c in chunks if c.strip()]


def run(argv, cwd):
    assert argv[0] == ".venv/bin/python", argv
    executable = sys.executable
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([executable, *argv[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_readme_your_own_corpus_commands(tmp_path):
    train, sample, serve = readme_commands()
    assert train[1:3] == ["-m", "trainers.train"] and "--dataset=text:my_corpus" in train
    rng = np.random.default_rng(0)
    (tmp_path / "my_corpus").mkdir()
    # Capitalised, with a full stop: the run reads it --lowercase --tokenizer=punctuation.
    (tmp_path / "my_corpus" / "train.txt").write_text("\n".join(
        " ".join(rng.choice(WORDS, rng.integers(2, 9))).capitalize() + "."
        for _ in range(120)) + "\n")

    out = run(train + TINY_TRAIN, tmp_path)
    (result,) = [json.loads(line[len("RESULT "):]) for line in out.splitlines()
                 if line.startswith("RESULT ")]
    assert result["step"] == 2 and np.isfinite(result["nll"]) and np.isfinite(result["valid_nll"])
    # 12 test lines were cut from the 120 (test_fraction 0.1); tokens = words + one <eos> each.
    assert result["sentences"] == 12
    with open(tmp_path / "runs" / "my_vae" / "tflv_run.json") as f:
        recorded = json.load(f)
    assert recorded["dataset"] == f"text:{tmp_path / 'my_corpus'}"
    assert recorded["dataset_options"]["vocab_size"] == 10000

    samples = run(sample, tmp_path).strip().splitlines()
    assert len(samples) == 5
    assert all(set(line.split()) <= set(WORDS) | {"<unk>", "<bos>", "."}
               for line in samples), samples

    # The SavedModel lower-cases and splits off the full stop as training did: no unknown word.
    served = run(serve, tmp_path).strip().splitlines()[-1]
    unknown, log_prob = re.fullmatch(r"\[(\d+)\] \[\s*([-+.\deE]+)\s*\]", served).groups()
    assert int(unknown) == 0, served
    assert np.isfinite(float(log_prob)) and float(log_prob) < 0, served
