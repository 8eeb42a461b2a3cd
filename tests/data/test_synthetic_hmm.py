"""synthetic_hmm: samples follow the true parameters (chi-square tests on initial, transition and
emission counts of the true states), are seeded, and reach the forms unchanged."""
import numpy as np
import pytest
from scipy import stats

import data

ALPHA = 1e-3  # the data are seeded: a failure is a bug, not bad luck


@pytest.fixture(scope="module")
def corpus():
    return data.load("synthetic_hmm")


def chi_square_p(observed, probs):
    """p-value of observed counts [R, C] against row distributions probs [R, C] (per-row totals)."""
    expected = observed.sum(1, keepdims=True) * probs
    keep = expected > 0
    statistic = ((observed - expected)[keep] ** 2 / expected[keep]).sum()
    dof = keep.sum() - len(observed)
    return stats.chi2.sf(statistic, dof)


def test_parameters(corpus):
    p = corpus.true_params
    assert p["initial"].shape == (4,) and p["transition"].shape == (4, 4)
    assert p["emission"].shape == (4, len(corpus.vocab)) == (4, 16)
    for name in ("initial", "transition", "emission"):
        np.testing.assert_allclose(p[name].sum(-1), 1.0)
    assert np.all(p["emission"][:, :4] == 0)
    assert corpus.info == {"vocab_size": 16, "num_tags": 4, "num_states": 4, "num_symbols": 12}


def test_samples_follow_true_parameters(corpus):
    rows = {"tokens": [], "tags": []}
    for batch in corpus.dataset("train", "tagged", 500):
        b = {k: v.numpy() for k, v in batch.items()}
        for i, n in enumerate(b["lengths"]):
            rows["tokens"].append(b["tokens"][i, :n])
            rows["tags"].append(b["tags"][i, :n])
    assert len(rows["tags"]) == 2000
    assert all(10 <= len(z) <= 30 for z in rows["tags"])
    p = corpus.true_params
    initial = np.bincount([z[0] for z in rows["tags"]], minlength=4)[None]
    transitions = np.zeros((4, 4))
    emissions = np.zeros((4, 16))
    for x, z in zip(rows["tokens"], rows["tags"]):
        np.add.at(transitions, (z[:-1], z[1:]), 1)
        np.add.at(emissions, (z, x), 1)
    assert chi_square_p(initial, p["initial"][None]) > ALPHA
    assert chi_square_p(transitions, p["transition"]) > ALPHA
    assert chi_square_p(emissions, p["emission"]) > ALPHA
    # The test has power: a wrong transition matrix is rejected.
    assert chi_square_p(transitions, np.roll(p["transition"], 1, axis=1)) < ALPHA


def test_seeded_and_forms_agree(corpus):
    again = data.load("synthetic_hmm", seed=0)
    other = data.load("synthetic_hmm", seed=1)
    first = lambda c: next(iter(c.dataset("valid", "tokens", 8)))["tokens"].numpy()  # noqa: E731
    np.testing.assert_array_equal(first(corpus), first(again))
    assert not np.array_equal(first(corpus), first(other))
    assert (corpus.num_examples("valid"), corpus.num_examples("test")) == (200, 200)
    tokens = [t for b in corpus.dataset("valid", "tokens", 64)
              for t, m in zip(b["tokens"].numpy().ravel(), b["mask"].numpy().ravel()) if m]
    stream = [t for b in corpus.dataset("valid", "stream", 4, seq_len=16)
              for t, m in zip(b["targets"].numpy().ravel(), b["mask"].numpy().ravel()) if m]
    assert len(stream) == len(tokens) + 200 == corpus.num_tokens("valid") + 200
    assert sorted(t for t in stream if t != 3) == sorted(tokens)
    small = data.load("synthetic_hmm", num_states=2, num_symbols=3, num_train=5,
                      length_range=(2, 3))
    assert small.info["vocab_size"] == 7 and small.num_examples("train") == 5
    with pytest.raises(ValueError, match="length_range"):
        data.load("synthetic_hmm", length_range=(5, 2))
