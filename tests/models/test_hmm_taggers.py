"""HMM taggers (hmm by gradient and by EM, neural_hmm, factorial_hmm) against exact references.

* The objective is -log p(x) by brute-force enumeration of every state path (float64), for free
  logits, the neural MLP parameterization and LSTM (per-position) transitions, with padding.
* One EM update is the MAP estimate from expected counts enumerated by brute force; stepwise EM
  interpolates them with η_k = (k + 1)^(-α); batch EM never decreases log p(x) + λ Σ log θ.
* EM on data from a known sparse HMM reaches the true model's held-out log-likelihood and its
  state recovery.
* evaluate_corpus on hand-checked tags; factorial: exact = enumeration over product states,
  mean-field ELBO ≤ exact (equal with one chain), one-chain tags = posterior decoding.
* Configs round-trip, every variable (EM statistics too) is checkpointed; a few gradient steps lower each gradient-trained model's loss; the real
  command line trains `hmm` by EM under MirroredStrategy on CoNLL-2000 and reports tag metrics.
"""
import itertools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax, logsumexp

import data
from tests.training import adam_step
from tflv import metrics, summaries
from tflv.distributions import HMM
from tflv.models import MODELS
from tflv.layers.hmm_parameterizations import HMMLogits, NeuralHMMLogits
from tflv.models.hmm_taggers import EMHMMTagger, FactorialHMMTagger, HMMTagger, NeuralHMMTagger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENS = np.array([[1, 3, 2, 0], [2, 2, 0, 0], [0, 1, 3, 3]], np.int32)  # V = 4
LENGTHS = np.array([3, 2, 4])
MASK = (np.arange(4) < LENGTHS[:, None]).astype(np.float32)
BATCH = {"tokens": tf.constant(TOKENS), "mask": tf.constant(MASK)}


def paths(num_states, length):
    return itertools.product(range(num_states), repeat=length)


def path_log_joint(z, x, log_init, log_trans, log_emit) -> float:
    """log p(x, z); log_trans [K, K] shared or [T-1, K, K] per step (entry t-1: z_{t-1} -> z_t)."""
    trans = lambda t: log_trans if log_trans.ndim == 2 else log_trans[t - 1]
    return (log_init[z[0]] + sum(trans(t)[z[t - 1], z[t]] for t in range(1, len(z)))
            + sum(log_emit[z[t], x[t]] for t in range(len(z))))


def enumerate_log_px(x, log_init, log_trans, log_emit) -> float:
    return logsumexp([path_log_joint(z, x, log_init, log_trans, log_emit)
                      for z in paths(len(log_init), len(x))])


def enumerate_counts(rows, log_init, log_trans, log_emit):
    """Expected (initial [K], transition [K, K], emission [K, V]) counts summed over rows."""
    counts = [np.zeros_like(log_init), np.zeros_like(log_trans), np.zeros_like(log_emit)]
    for x in rows:
        log_px = enumerate_log_px(x, log_init, log_trans, log_emit)
        for z in paths(len(log_init), len(x)):
            weight = np.exp(path_log_joint(z, x, log_init, log_trans, log_emit) - log_px)
            counts[0][z[0]] += weight
            for t in range(1, len(x)):
                counts[1][z[t - 1], z[t]] += weight
            for t in range(len(x)):
                counts[2][z[t], x[t]] += weight
    return counts


def log_probs(layer, tokens=TOKENS):
    """The layer's logits, log-softmax-normalised in float64."""
    return [log_softmax(np.float64(p), axis=-1) for p in layer(tf.constant(tokens))]


@pytest.mark.parametrize("make_logits", [
    lambda: HMMLogits(3, 4),
    lambda: NeuralHMMLogits(3, 4, embed_dim=5, hidden_dim=6, transitions="mlp"),
    lambda: NeuralHMMLogits(3, 4, embed_dim=5, hidden_dim=6, transitions="lstm"),
], ids=["free", "neural_mlp", "neural_lstm"])
def test_objective_is_minus_log_marginal_by_enumeration(make_logits):
    keras.utils.set_random_seed(0)
    model = HMMTagger(make_logits())
    objective = model.objective(BATCH)
    log_init, log_trans, log_emit = log_probs(model.logits)
    expected = [-enumerate_log_px(x[:n], log_init, log_trans if log_trans.ndim == 2 else
                                  log_trans[b], log_emit)
                for b, (x, n) in enumerate(zip(TOKENS, LENGTHS))]
    np.testing.assert_allclose(objective.stats["nll"], expected, rtol=1e-5)
    np.testing.assert_allclose(objective.stats["tokens"], LENGTHS)
    np.testing.assert_allclose(objective.loss, np.array(expected) / LENGTHS, rtol=1e-5)
    # Viterbi tags maximise log p(x, z) over the enumerated paths of each row.
    tags = model.tags(BATCH["tokens"], BATCH["mask"]).numpy()
    for b, (x, n) in enumerate(zip(TOKENS, LENGTHS)):
        trans = log_trans if log_trans.ndim == 2 else log_trans[b]
        best = max(paths(3, n), key=lambda z: path_log_joint(z, x[:n], log_init, trans, log_emit))
        np.testing.assert_array_equal(tags[b, :n], best)


def test_free_hmm_objective_is_hmm_log_prob():
    keras.utils.set_random_seed(1)
    model = HMMTagger(HMMLogits(3, 4))
    np.testing.assert_allclose(
        -model.objective(BATCH).stats["nll"],
        HMM(*model.logits(BATCH["tokens"])).log_prob(BATCH["tokens"], BATCH["mask"]), rtol=1e-6)


def test_em_update_is_map_of_enumerated_expected_counts():
    keras.utils.set_random_seed(2)
    pseudo, num_examples, decay = 0.3, 5, 0.5
    model = EMHMMTagger(HMMLogits(2, 4), num_examples=num_examples, em_decay=decay,
                        pseudo_count=pseudo)
    rows = [x[:n] for x, n in zip(TOKENS, LENGTHS)]
    before = log_probs(model.logits)
    objective = model.apply_update(BATCH)  # k = 0: η = 1
    np.testing.assert_allclose(objective.stats["nll"],
                               [-enumerate_log_px(x, *before) for x in rows], rtol=1e-5)
    first = [num_examples / 3 * c for c in enumerate_counts(rows, *before)]
    for statistic, expected in zip(model.statistics, first):
        np.testing.assert_allclose(statistic, expected, rtol=1e-4, atol=1e-5)
    for log_p, expected in zip(log_probs(model.logits), first):  # θ ∝ μ + λ
        np.testing.assert_allclose(np.exp(log_p), (expected + pseudo) / (
            expected + pseudo).sum(-1, keepdims=True), rtol=1e-4)
    # k = 1 on the first two rows: μ = (1 - η) μ_0 + η (N / 2) s, η = 2^-α.
    middle = log_probs(model.logits)
    model.apply_update({name: value[:2] for name, value in BATCH.items()})
    eta = 2.0 ** -decay
    second = enumerate_counts(rows[:2], *middle)
    for statistic, old, new in zip(model.statistics, first, second):
        np.testing.assert_allclose(statistic, (1 - eta) * old + eta * num_examples / 2 * new,
                                   rtol=1e-4, atol=1e-5)


def em_corpus():
    # A sparse generator (Dirichlet 0.1): its states are identifiable from the words.
    return data.load("synthetic_hmm", concentration=0.1, num_train=1000)


def test_batch_em_never_decreases_the_map_objective():
    keras.utils.set_random_seed(3)
    pseudo = 0.01
    batch = next(iter(em_corpus().dataset("train", "tokens", 32)))
    model = EMHMMTagger(HMMLogits(4, 16), num_examples=32, em_decay=0.0, pseudo_count=pseudo)
    objectives = []
    for _ in range(8):  # objective of the parameters *before* each update
        log_prior = sum(float(tf.reduce_sum(p)) for p in log_probs(model.logits))
        nll = model.apply_update(batch).stats["nll"]
        objectives.append(-float(tf.reduce_sum(nll)) + pseudo * log_prior)
    assert objectives[-1] > objectives[0] + 1.0
    # Non-decreasing up to float32 round-off of a sum of ~1,300 token log-probabilities.
    assert np.all(np.diff(objectives) >= -1e-5 * abs(objectives[0])), objectives


def test_em_recovers_a_known_hmm():
    """Batch EM (best of 3 random starts by training likelihood) on 1,000 sequences of a known
    sparse HMM (K = 4, V = 12). The MLE's expected held-out excess is about d / (2 N) ≈ 59 /
    40,000 ≈ 0.0015 nats per token (Akaike); we allow 0.01, while a unigram model is 0.36 worse.
    Its Viterbi states must score many-to-one within 0.02 of the true model's Viterbi states.
    """
    corpus = em_corpus()
    train = next(iter(corpus.dataset("train", "tokens", corpus.num_examples("train"))))
    test = next(iter(corpus.dataset("test", "tagged", corpus.num_examples("test"))))
    real = test["mask"].numpy() > 0
    params = corpus.true_params
    with np.errstate(divide="ignore"):
        true = HMM(*(np.log(params[k]) for k in ("initial", "transition", "emission")))
    true_ll = float(tf.reduce_sum(true.log_prob(test["tokens"], test["mask"])) / real.sum())
    true_tags = true.viterbi(test["tokens"], test["mask"]).numpy()[real]

    keras.utils.set_random_seed(4)
    model = EMHMMTagger(HMMLogits(4, corpus.info["vocab_size"]), num_examples=1000,
                        em_decay=0.0, pseudo_count=0.01)
    step = tf.function(lambda b: tf.reduce_sum(model.apply_update(b).stats["nll"]))
    rng = np.random.default_rng(0)
    fits = []
    for _ in range(3):
        for variable in model.logits.logits:
            variable.assign(rng.normal(size=variable.shape))
        for _ in range(60):
            train_nll = float(step(train))
        fits.append((train_nll, [v.numpy() for v in model.logits.logits]))
    model.logits.assign(*min(fits, key=lambda fit: fit[0])[1])
    fitted_ll = -float(tf.reduce_sum(model.objective(test).stats["nll"]) / real.sum())
    assert abs(fitted_ll - true_ll) < 0.01, (fitted_ll, true_ll)
    fitted = model.evaluate_corpus(corpus, "test", 200)
    assert fitted["many_to_one"] > metrics.many_to_one_accuracy(
        true_tags, test["tags"].numpy()[real]) - 0.02, fitted


class TinyTaggedCorpus:
    """Two sentences with hand-written gold tags, in the `tagged` form."""

    forms = ("tokens", "tagged")
    tokens = [[4, 5, 4, 6], [5, 5, 0, 0]]
    gold = [[0, 1, 1, 2], [1, 0, 0, 0]]
    lengths = [4, 2]

    def dataset(self, split, form, batch_size):
        assert (split, form) == ("test", "tagged")
        mask = (np.arange(4) < np.array(self.lengths)[:, None]).astype(np.float32)
        return tf.data.Dataset.from_tensor_slices(
            {"tokens": np.int32(self.tokens), "tags": np.int32(self.gold), "mask": mask,
             "lengths": np.int32(self.lengths)}).batch(batch_size)


def test_evaluate_corpus_on_hand_checked_tags():
    # States = words (emission logits 30·I, flat transitions), so Viterbi tags z_t = x_t:
    # clusters 4 -> gold {0, 1}, 5 -> {1, 1, 0}, 6 -> {2}. Many-to-one: 1 + 2 + 1 = 4 of 6;
    # one-to-one: 5->1, 4->0, 6->2 gives 2 + 1 + 1 = 4 of 6.
    logits = HMMLogits(7, 7, name="logits")
    logits.assign(tf.zeros([7]), tf.zeros([7, 7]), 30.0 * tf.eye(7))
    model = HMMTagger(logits)
    corpus = TinyTaggedCorpus()
    result = model.evaluate_corpus(corpus, "test", batch_size=1)
    assert result["many_to_one"] == pytest.approx(4 / 6)
    assert result["one_to_one"] == pytest.approx(4 / 6)
    words, gold = [4, 5, 4, 6, 5, 5], [0, 1, 1, 2, 1, 0]
    assert result["v_measure"] == pytest.approx(metrics.v_measure(words, gold))
    untagged = type("Untagged", (), {"forms": ("tokens",)})()
    assert model.evaluate_corpus(untagged, "test", 2) == {}


def factorial_log_px(x, log_init, log_trans, log_emit) -> float:
    """log p(x) of L chains by enumeration over the product-state paths (float64)."""
    num_chains, num_states = log_init.shape
    total = []
    for flat in paths(num_states ** num_chains, len(x)):
        z = [np.unravel_index(s, (num_states,) * num_chains) for s in flat]
        score = sum(log_init[l, z[0][l]] for l in range(num_chains))
        score += sum(log_trans[l, z[t - 1][l], z[t][l]]
                     for t in range(1, len(x)) for l in range(num_chains))
        for t in range(len(x)):
            joint = sum(log_emit[l, z[t][l]] for l in range(num_chains))  # [V]
            score += joint[x[t]] - logsumexp(joint)
        total.append(score)
    return logsumexp(total)


def test_factorial_exact_enumeration_and_mean_field_bound():
    keras.utils.set_random_seed(5)
    batch = {name: value[:, :3] for name, value in BATCH.items()}
    exact = FactorialHMMTagger(4, num_chains=2, num_states=2, inference="exact")
    mean_field = FactorialHMMTagger(4, num_chains=2, num_states=2, inference="mean_field",
                                    mean_field_iterations=10)
    mean_field.logits.assign(*exact.logits(batch["tokens"]))
    log_params = log_probs(exact.logits)
    expected = [-factorial_log_px(x[:min(n, 3)], *log_params) for x, n in zip(TOKENS, LENGTHS)]
    exact_nll = exact.objective(batch).stats["nll"].numpy()
    np.testing.assert_allclose(exact_nll, expected, rtol=1e-5)
    bound_nll = mean_field.objective(batch).stats["nll"].numpy()
    assert np.all(bound_nll >= exact_nll - 1e-4) and np.any(bound_nll > exact_nll + 1e-3)


def test_one_chain_factorial_is_an_hmm():
    """With L = 1 mean field is exact: ELBO = log p(x), tags = argmax p(z_t | x)."""
    keras.utils.set_random_seed(6)
    model = FactorialHMMTagger(4, num_chains=1, num_states=3, inference="mean_field")
    hmm = HMM(*(p[0] for p in model.logits(BATCH["tokens"])))
    np.testing.assert_allclose(-model.objective(BATCH).stats["nll"],
                               hmm.log_prob(BATCH["tokens"], BATCH["mask"]), rtol=1e-5)
    unary, _ = hmm.posterior_marginals(BATCH["tokens"], BATCH["mask"])
    expected = np.where(MASK > 0, np.argmax(unary, axis=-1), 0)
    np.testing.assert_array_equal(model.tags(BATCH["tokens"], BATCH["mask"]), expected)


@pytest.mark.parametrize("model", [
    lambda: HMMTagger(HMMLogits(3, 4, name="logits")),
    lambda: EMHMMTagger(HMMLogits(3, 4, name="logits"), num_examples=7, em_decay=0.6),
    lambda: NeuralHMMTagger(NeuralHMMLogits(3, 4, 5, 6, "lstm", name="logits")),
    lambda: FactorialHMMTagger(4, num_chains=2, num_states=2, mean_field_iterations=3),
], ids=["hmm", "em", "neural_hmm", "factorial_hmm"])
def test_config_round_trip(model):
    keras.utils.set_random_seed(7)
    original = model()
    original.objective(BATCH)
    tracked = {id(t) for t in tf.train.TrackableView(original).descendants()}
    missing = [v.path for v in original.variables
               if id(v) not in tracked and "seed_generator" not in v.path]  # dropout seeds aside
    assert not missing, f"a checkpoint would miss {missing}"
    copy = type(original).from_config(original.get_config())
    copy.objective(BATCH)
    assert copy.get_config() == original.get_config()
    copy.set_weights(original.get_weights())
    np.testing.assert_allclose(copy.objective(BATCH).loss, original.objective(BATCH).loss,
                               rtol=1e-6)


@pytest.mark.parametrize("model", [
    lambda: HMMTagger(HMMLogits(4, 16)),
    lambda: NeuralHMMTagger(NeuralHMMLogits(4, 16, 8, 16, "lstm")),
    # ~60 s on 2 cores, nearly all of it building the mean-field step's graph
    pytest.param(lambda: FactorialHMMTagger(16, num_chains=2, num_states=2),
                 marks=pytest.mark.slow),
], ids=["hmm", "neural_hmm", "factorial_hmm"])
def test_gradient_steps_lower_the_loss(model):
    keras.utils.set_random_seed(8)
    model = model()
    batch = next(iter(em_corpus().dataset("train", "tokens", 8)))
    step = adam_step(model, 0.1)
    losses = [float(step(batch)) for _ in range(4)]
    assert losses[-1] < losses[0] - 0.05, losses


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="EM needs free logits"):
        EMHMMTagger(NeuralHMMLogits(3, 4), num_examples=5)
    with pytest.raises(ValueError, match="inference must be one of"):
        FactorialHMMTagger(4, inference="gibbs")
    with pytest.raises(ValueError, match="transitions must be one of"):
        NeuralHMMLogits(3, 4, transitions="gru")
    with pytest.raises(ValueError, match="num_states must be a positive integer"):
        HMMLogits(0, 4)
    assert {"hmm", "neural_hmm", "factorial_hmm"} <= set(MODELS)


@pytest.mark.slow
def test_trainer_em_mirrored_on_conll2000(tmp_path, data_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--model=hmm", "--dataset=conll2000",
         f"--data_dir={data_dir}", "--hmm_training=em", "--num_states=8", "--batch_size=32",
         "--train_steps=3", "--strategy=mirrored", "--num_cpu_devices=2", "--eval_batch_size=256",
         "--max_eval_batches=2", f"--model_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["step"] == 3
    np.testing.assert_allclose(result["ppl"], np.exp(result["nll"]), rtol=1e-6)
    for name in ("many_to_one", "one_to_one", "v_measure", "valid_many_to_one"):
        assert 0 < result[name] <= 1, result
    # Every one-to-one map is a many-to-one map.
    assert result["many_to_one"] >= result["one_to_one"]
    # TensorBoard's table of states: its shares, weighted by tokens, are many-to-one accuracy.
    events = summaries.read_events(str(tmp_path / "summaries"))
    (_, table), = events["test/state_tags"]
    rows = [row.strip("| ").split(" | ") for row in table.item().decode().splitlines()[2:]]
    shares, tokens = np.array([[float(r[2]), int(r[3])] for r in rows]).T
    assert abs(shares @ tokens / tokens.sum() - result["many_to_one"]) < 0.005
    assert not any(r[1].isdigit() for r in rows), rows  # tags by name (NN, VBZ, ...), not id
    (_, image), = events["test/state_tag_confusion"]
    assert int(image[1]) == 8 * len(rows)  # height: a block row per decoded state
