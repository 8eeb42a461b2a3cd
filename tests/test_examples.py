"""Every script in examples/ runs (`--smoke`: tiny models, two steps) and what it prints holds.

The scripts run in this process (`main(["--smoke"])`, TensorFlow imported once), on the real
corpora under the data root. Beyond running, each result is checked against what is true of it
whatever the training: a bound is below what it bounds, a KL is ≥ 0, a many-to-one accuracy is
≥ the one-to-one accuracy (a bijection is one of the many-to-one maps), NPMI ∈ [−1, 1].
"""
import importlib.util
import math
import pathlib
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str):
    sys.path.insert(0, str(EXAMPLES))  # the examples import their shared `common` module
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.main(["--smoke"])
    finally:
        sys.path.remove(str(EXAMPLES))


def test_every_example_is_tested():
    scripts = {path.stem for path in EXAMPLES.glob("*.py")} - {"common"}
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert scripts <= tested, f"examples without a test here: {sorted(scripts - tested)}"


def test_mixture_lm():
    results = run_example("mixture_lm")
    assert set(results) == {"exact", "score_function", "gumbel_softmax"}
    for name, metrics in results.items():
        # log p(x) − ELBO = KL(q(z | x) ‖ p(z | x)) ≥ 0 (float32 sums of ~100-nat terms).
        assert metrics["gap"] >= -1e-3 * abs(metrics["elbo"]), (name, metrics)
        assert 1.0 < metrics["ppl"] < math.inf
    assert abs(results["exact"]["gap"]) <= 1e-3 * abs(results["exact"]["elbo"])  # q = p(z | x)


def test_sentence_vae():
    results = run_example("sentence_vae")
    assert len(results) == 3
    for metrics in results.values():
        assert metrics["kl"] >= 0 and metrics["elbo"] < 0
        assert 0 <= metrics["active_units"] <= 4
        # The estimate mean_n [log q(z_n | x_n) − log (1/N) Σ_m q(z_n | x_m)] is ≤ log N (N = 64).
        assert metrics["mutual_information"] <= math.log(64) + 1e-4


def test_hmm_tagging():
    metrics = run_example("hmm_tagging")
    assert 0 < metrics["one_to_one"] <= metrics["many_to_one"] <= 1
    assert 0 <= metrics["v_measure"] <= 1
    assert 1.0 < metrics["ppl"] < math.inf


def test_topic_models():
    results = run_example("topic_models")
    assert set(results) == {"NVDM", "GSM", "ProdLDA"}
    for metrics in results.values():
        assert metrics["kl"] >= 0 and 1.0 < metrics["ppl"] < math.inf
        assert -1 <= metrics["npmi"] <= 1


def test_latent_attention():
    results = run_example("latent_attention")
    assert set(results) == {"soft", "latent_exact", "latent_elbo"}
    for metrics in results.values():
        assert 1.0 < metrics["ppl"] < math.inf
        assert 0 <= metrics.get("bleu", 0) <= 100  # BLEU only without --smoke
