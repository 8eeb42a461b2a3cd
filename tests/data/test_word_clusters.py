"""The exchange algorithm: each move's scored gain is the change of the class-bigram
log-likelihood recomputed from scratch, passes never lower it, it recovers the classes of a
corpus drawn from a class bigram model, and bad bigram input is named."""
import numpy as np
import pytest

from data.word_clusters import (_insertion_gains, bigram_counts, class_bigram_log_likelihood,
                                exchange_clusters)


def class_bigram_corpus(rng, num_classes=4, words_per_class=6, length=20000):
    """Tokens from a class bigram model whose class transitions are nearly deterministic."""
    transition = np.full((num_classes, num_classes), 0.02)
    transition[np.arange(num_classes), (np.arange(num_classes) + 1) % num_classes] = 1.0
    transition /= transition.sum(1, keepdims=True)
    truth = np.repeat(np.arange(num_classes), words_per_class)
    rng.shuffle(truth)
    members = [np.flatnonzero(truth == c) for c in range(num_classes)]
    cls, tokens = 0, []
    for _ in range(length):
        cls = rng.choice(num_classes, p=transition[cls])
        tokens.append(rng.choice(members[cls]))
    return np.array(tokens), truth


def test_bigram_counts_are_within_rows_and_masked():
    batches = [{"targets": np.array([[1, 2, 1, 2], [2, 1, 0, 0]]),
                "mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]])}]
    first, second, count = bigram_counts(batches, 3)
    got = {(int(u), int(v)): c for u, v, c in zip(first, second, count)}
    assert got == {(1, 2): 2.0, (2, 1): 2.0}  # (2, 0) crosses into padding: not counted
    with pytest.raises(ValueError, match="id 7, outside the vocabulary"):
        bigram_counts([{"targets": np.array([[1, 7]]), "mask": np.array([[1, 1]])}], 3)


def test_every_scored_gain_is_the_recomputed_change_of_the_likelihood():
    rng = np.random.default_rng(0)
    vocab, num_classes = 9, 3
    first, second = rng.integers(0, vocab, 60), rng.integers(0, vocab, 60)
    first[:5] = second[:5] = 4  # self-bigrams of word 4
    keys, count = np.unique(first * vocab + second, return_counts=True)
    first, second, count = keys // vocab, keys % vocab, count.astype(float)
    classes = np.arange(vocab) % num_classes
    n = np.zeros((vocab, vocab))
    np.add.at(n, (first, second), count)
    for w in range(vocab):
        a, others = classes[w], np.arange(vocab) != w
        # The state with w taken out: class counts of the bigrams without w, and w's links.
        between = np.zeros((num_classes, num_classes))
        sub = n[np.ix_(others, others)]
        np.add.at(between, (classes[others][:, None], classes[others][None, :]), sub)
        r = np.bincount(classes[others], n[w, others], minlength=num_classes)
        l = np.bincount(classes[others], n[others, w], minlength=num_classes)
        left = np.bincount(classes[others], n[others].sum(1), minlength=num_classes)
        right = np.bincount(classes[others], n[:, others].sum(0), minlength=num_classes)
        gains = _insertion_gains(between, left, right, r, l, n[w, w], n[w].sum(), n[:, w].sum())
        for b in range(num_classes):
            moved = classes.copy()
            moved[w] = b
            change = (class_bigram_log_likelihood(first, second, count, moved, num_classes)
                      - class_bigram_log_likelihood(first, second, count, classes, num_classes))
            np.testing.assert_allclose(gains[b] - gains[a], change, atol=1e-9)


def test_passes_raise_the_likelihood_and_recover_planted_classes():
    rng = np.random.default_rng(1)
    tokens, truth = class_bigram_corpus(rng)
    first, second, count = bigram_counts([{"targets": tokens[None], "mask": np.ones((1, len(
        tokens)))}], len(truth))
    start = exchange_clusters(first, second, count, len(truth), 4, max_passes=0)
    found = exchange_clusters(first, second, count, len(truth), 4)
    assert found.passes >= 2 and found.moves[-1] == 0  # converged
    assert found.log_likelihood > start.log_likelihood
    # Monotone: every prefix of the passes is at least as likely as the one before.
    values = [exchange_clusters(first, second, count, len(truth), 4, max_passes=p
                                ).log_likelihood for p in range(found.passes + 1)]
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:]))
    np.testing.assert_allclose(found.log_likelihood, class_bigram_log_likelihood(
        first, second, count, found.classes, 4))
    # The planted partition, up to renaming the classes.
    pairs = set(zip(truth.tolist(), found.classes.tolist()))
    assert len(pairs) == 4 and len({t for t, _ in pairs}) == 4
    assert np.all(np.bincount(found.classes, minlength=4) > 0)


def test_start_is_round_robin_and_no_class_empties():
    first, second, count = np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([5.0, 3.0, 1.0])
    start = exchange_clusters(first, second, count, 5, 5, max_passes=0)
    np.testing.assert_array_equal(np.sort(start.classes), np.arange(5))
    found = exchange_clusters(first, second, count, 5, 5)
    np.testing.assert_array_equal(np.sort(found.classes), np.arange(5))  # one word each


@pytest.mark.parametrize("args, match", [
    (dict(num_clusters=0), "num_clusters must be an integer in"),
    (dict(second=np.array([0, 9])), "second ids must be in"),
    (dict(count=np.array([1.0, -1.0])), "non-negative"),
    (dict(count=np.array([1.0])), "one length"),
])
def test_bad_input_is_named(args, match):
    kwargs = dict(first=np.array([0, 1]), second=np.array([1, 0]), count=np.array([1.0, 2.0]),
                  vocab_size=3, num_clusters=2)
    kwargs.update(args)
    with pytest.raises(ValueError, match=match):
        exchange_clusters(**kwargs)
