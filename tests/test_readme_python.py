"""README "In Python": its block run as written (read from README.md) on a tiny folder of text
made here, with only its sizes made tiny: a sentence VAE built from its config, trained with
`fit`, evaluated, exported, and sampled through the SavedModel."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "the a cat dog sat ran on mat big small".split()
# README text -> tiny replacement; each must occur once in the block.
TINY = {"embed_dim=128, hidden_dim=128": "embed_dim=8, hidden_dim=8, latent_dim=4, iw_samples=2",
        "kl_warmup_steps=1000": "kl_warmup_steps=2", "steps_per_epoch=2000": "steps_per_epoch=2"}


def readme_block() -> str:
    """The first ```python block of README.md's "In Python" section."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        section = f.read().split("## In Python", 1)[1]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```\n", start)]


@pytest.mark.slow
def test_readme_in_python_block_trains_evaluates_exports_and_samples(tmp_path):
    block = readme_block()
    assert len(block.strip().splitlines()) < 20
    for text, tiny in TINY.items():
        assert block.count(text) == 1, text
        block = block.replace(text, tiny)
    rng = np.random.default_rng(0)
    (tmp_path / "my_corpus").mkdir()
    (tmp_path / "my_corpus" / "train.txt").write_text("\n".join(
        " ".join(rng.choice(WORDS, rng.integers(2, 9))) for _ in range(120)) + "\n")
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    check = ('\nimport json\nprint("CHECK", json.dumps({"metrics": metrics, "samples": '
             '[s.decode() for s in samples["text"].numpy()]}))\n')
    proc = subprocess.run([sys.executable, "-c", block + check], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("CHECK ")]
    got = json.loads(line[len("CHECK "):])
    metrics, samples = got["metrics"], got["samples"]
    assert metrics["sentences"] == 12 and np.isfinite(metrics["nll"])  # 10% of 120 lines
    assert np.isclose(metrics["ppl"], np.exp(metrics["nll"]), rtol=1e-5)
    assert len(samples) == 5
    assert all(set(s.split()) <= set(WORDS) | {"<unk>", "<bos>"} for s in samples), samples
    assert (tmp_path / "exported" / "my_vae" / "saved_model.pb").exists()
