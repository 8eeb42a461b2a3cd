"""Tests of tflv.distributions.HMM against enumeration, TFP and float64 references.

The oracle enumerates all K^T state paths of each unpadded row (numpy, float64): log p(x),
posterior marginals, Viterbi path, posterior entropy, expected counts and path probabilities
for the chi-square tests of the samplers all come from it. Graph-mode cases run under
`tf.function` with an input signature of unknown dimensions.
"""
import itertools

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.distributions import HMM

tfd = tfp.distributions
MODES = ["eager", "graph"]


def compile_for(mode, fn, ranks_and_dtypes):
    """fn itself (eager) or a tf.function whose inputs have unknown static dimensions."""
    if mode == "eager":
        return fn
    return tf.function(fn, input_signature=[tf.TensorSpec([None] * rank, dtype)
                                            for rank, dtype in ranks_and_dtypes])


def enumerate_chain(initial, transition, emission):
    """Brute force over all paths. initial [K], transition [K, K] or [L-1, K, K] (per step),
    emission [L, K] log-potentials (float64). Returns the exact quantities of the chain."""
    length, k = emission.shape
    per_step = transition if transition.ndim == 3 else np.broadcast_to(
        transition, (max(length - 1, 0), k, k))
    paths = list(itertools.product(range(k), repeat=length))
    scores = np.array([initial[z[0]] + sum(per_step[t - 1, z[t - 1], z[t]]
                                           for t in range(1, length))
                       + sum(emission[t, z[t]] for t in range(length)) if length else 0.0
                       for z in paths])
    log_z = scipy.special.logsumexp(scores)
    probs = np.exp(scores - log_z)
    unary = np.zeros((length, k))
    pairwise = np.zeros((max(length - 1, 0), k, k))
    init_counts, trans_counts = np.zeros(k), np.zeros((k, k))
    for z, p in zip(paths, probs):
        for t in range(length):
            unary[t, z[t]] += p
        for t in range(1, length):
            pairwise[t - 1, z[t - 1], z[t]] += p
        if length:
            init_counts[z[0]] += p
    trans_counts = pairwise.sum(0) if length > 1 else trans_counts
    entropy = -np.sum(probs * np.log(probs)) if length else 0.0
    viterbi = np.array(paths[int(np.argmax(scores))]) if length else np.zeros(0, int)
    return dict(log_z=log_z, unary=unary, pairwise=pairwise, entropy=entropy, viterbi=viterbi,
                paths=paths, probs=probs, init_counts=init_counts, trans_counts=trans_counts)


def log_softmax(a):
    return scipy.special.log_softmax(a, axis=-1)


def random_hmm(rng, k, v, scale=1.0):
    return (scale * rng.normal(size=k), scale * rng.normal(size=(k, k)),
            scale * rng.normal(size=(k, v)))


def padded(rng, lengths, t, v):
    x = rng.integers(0, v, size=(len(lengths), t))
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]
    return x.astype(np.int32), mask


def row_oracle(params, x_row):
    init, trans, emit = (log_softmax(p) for p in params)
    return enumerate_chain(init, trans, emit[:, x_row].T)


@pytest.mark.parametrize("mode,semiring", [("eager", "scaled"), ("eager", "log"),
                                           ("graph", "scaled")])
def test_logits_hmm_matches_enumeration(mode, semiring):
    rng = np.random.default_rng(1)
    k, v, t, lengths = 3, 4, 4, [4, 3, 1, 0]
    params = random_hmm(rng, k, v)
    x, mask = padded(rng, lengths, t, v)

    def run(initial, transition, emission, x, mask):
        hmm = HMM(initial, transition, emission, semiring=semiring)
        post = hmm.posterior(x, mask, pairwise=True)
        return dict(log_prob=hmm.log_prob(x, mask), post_log_prob=post.log_prob,
                    unary=post.unary, pairwise=post.pairwise,
                    entropy=hmm.posterior_entropy(x, mask), viterbi=hmm.viterbi(x, mask),
                    counts=hmm.expected_counts(x, mask))

    fn = compile_for(mode, run, [(1, tf.float64), (2, tf.float64), (2, tf.float64),
                                 (2, tf.int32), (2, tf.bool)])
    out = fn(*[tf.constant(p, tf.float64) for p in params], tf.constant(x), tf.constant(mask))
    oracles = [row_oracle(params, x[b, :n]) for b, n in enumerate(lengths)]
    for b, (n, ref) in enumerate(zip(lengths, oracles)):
        for key in ("log_prob", "post_log_prob"):
            np.testing.assert_allclose(out[key][b], ref["log_z"], rtol=1e-12)
        np.testing.assert_allclose(out["entropy"][b], ref["entropy"], atol=1e-12)
        unary = np.zeros((t, k))
        unary[:n] = ref["unary"]
        np.testing.assert_allclose(out["unary"][b], unary, atol=1e-12)
        pairwise = np.zeros((t - 1, k, k))
        pairwise[:max(n - 1, 0)] = ref["pairwise"]
        np.testing.assert_allclose(out["pairwise"][b], pairwise, atol=1e-12)
        np.testing.assert_array_equal(out["viterbi"][b], np.pad(ref["viterbi"], (0, t - n)))
    emission_counts = np.zeros((k, v))
    for b, (n, ref) in enumerate(zip(lengths, oracles)):
        for s in range(n):
            emission_counts[:, x[b, s]] += ref["unary"][s]
    expected = [sum(r["init_counts"] for r in oracles), sum(r["trans_counts"] for r in oracles),
                emission_counts]
    for got, want in zip(out["counts"], expected):
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_per_step_potentials_match_enumeration(mode):
    """from_log_potentials with unnormalised, time-varying transitions [B, T-1, K, K]."""
    rng = np.random.default_rng(2)
    b, t, k, lengths = 3, 4, 3, [4, 2, 3]
    initial = rng.normal(size=(b, k))
    transition = 2.0 * rng.normal(size=(b, t - 1, k, k))
    emission = 2.0 * rng.normal(size=(b, t, k))
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]

    def run(initial, transition, emission, mask):
        hmm = HMM.from_log_potentials(initial, transition, emission, per_step_transitions=True)
        unary, pairwise = hmm.posterior_marginals(mask=mask)
        return dict(log_z=hmm.log_prob(mask=mask), unary=unary, pairwise=pairwise,
                    entropy=hmm.posterior_entropy(mask=mask), viterbi=hmm.viterbi(mask=mask))

    fn = compile_for(mode, run, [(2, tf.float64), (4, tf.float64), (3, tf.float64),
                                 (2, tf.bool)])
    out = fn(*[tf.constant(p, tf.float64) for p in (initial, transition, emission)],
             tf.constant(mask))
    for row, n in enumerate(lengths):
        ref = enumerate_chain(initial[row], transition[row, :n - 1], emission[row, :n])
        np.testing.assert_allclose(out["log_z"][row], ref["log_z"], rtol=1e-12)
        np.testing.assert_allclose(out["entropy"][row], ref["entropy"], atol=1e-12)
        np.testing.assert_allclose(out["unary"][row, :n], ref["unary"], atol=1e-12)
        np.testing.assert_allclose(out["pairwise"][row, :n - 1], ref["pairwise"], atol=1e-12)
        np.testing.assert_array_equal(out["unary"][row, n:], 0.0)
        np.testing.assert_array_equal(out["viterbi"][row], np.pad(ref["viterbi"], (0, t - n)))


def test_identity_log_z_equals_expected_score_plus_entropy():
    """log Z = Σ marginals · potentials + H, with H from enumeration (torch-struct's check)."""
    rng = np.random.default_rng(3)
    t, k = 5, 3
    initial, transition, emission = (rng.normal(size=(2, k)), rng.normal(size=(2, k, k)),
                                     rng.normal(size=(2, t, k)))
    hmm = HMM.from_log_potentials(*[tf.constant(p, tf.float64)
                                    for p in (initial, transition, emission)])
    unary, pairwise = hmm.posterior_marginals()
    for row in range(2):
        ref = enumerate_chain(initial[row], transition[row], emission[row])
        expected_score = (np.sum(unary[row, 0] * initial[row])
                          + np.sum(pairwise[row] * transition[row][None])
                          + np.sum(unary[row] * emission[row]))
        np.testing.assert_allclose(hmm.log_prob()[row], expected_score + ref["entropy"],
                                   rtol=1e-12)


def test_marginals_are_the_gradients_of_log_z():
    """unary = ∂ log Z / ∂ emission potentials, pairwise = ∂ log Z / ∂ per-step transitions."""
    rng = np.random.default_rng(16)
    b, t, k = 2, 5, 3
    potentials = [tf.constant(rng.normal(size=s)) for s in ((b, k), (b, t - 1, k, k), (b, t, k))]
    mask = tf.constant(np.arange(t)[None, :] < np.array([[5], [3]]))
    with tf.GradientTape() as tape:
        tape.watch(potentials)
        hmm = HMM.from_log_potentials(*potentials, per_step_transitions=True)
        log_z = hmm.log_prob(mask=mask)
    _, d_transition, d_emission = tape.gradient(log_z, potentials)
    unary, pairwise = hmm.posterior_marginals(mask=mask)
    np.testing.assert_allclose(unary, d_emission, atol=1e-12)
    np.testing.assert_allclose(pairwise, d_transition, atol=1e-12)


def test_agrees_with_tfp_hidden_markov_model():
    rng = np.random.default_rng(4)
    k, v, t = 4, 6, 7
    # Batch shape [2]: batched transitions, shared initial and emission logits.
    initial, emission = rng.normal(size=k), rng.normal(size=(k, v))
    transition = rng.normal(size=(2, k, k))
    x = rng.integers(0, v, size=(2, t)).astype(np.int32)
    reference = tfd.HiddenMarkovModel(tfd.Categorical(logits=initial),
                                      tfd.Categorical(logits=transition),
                                      tfd.Categorical(logits=emission), num_steps=t)
    hmm = HMM(initial, transition, emission)
    assert hmm.batch_shape == reference.batch_shape
    np.testing.assert_allclose(hmm.log_prob(x), reference.log_prob(x), rtol=1e-12)
    np.testing.assert_allclose(hmm.posterior(x).unary,
                               reference.posterior_marginals(x).probs_parameter(), atol=1e-12)


def test_padding_gives_the_unpadded_results_for_every_method():
    rng = np.random.default_rng(5)
    k, v, t, lengths = 3, 5, 6, [6, 4, 1]
    hmm = HMM(*[tf.constant(p, tf.float32) for p in random_hmm(rng, k, v)])
    x, mask = padded(rng, lengths, t, v)
    x[~mask] = v + 7  # padding holds ids the checks must ignore
    batch = dict(log_prob=hmm.log_prob(x, mask), marginals=hmm.posterior_marginals(x, mask),
                 viterbi=hmm.viterbi(x, mask), entropy=hmm.posterior_entropy(x, mask),
                 counts=hmm.expected_counts(x, mask))
    counts = [np.zeros(c.shape) for c in batch["counts"]]
    for row, n in enumerate(lengths):
        single = x[row:row + 1, :n]
        np.testing.assert_allclose(batch["log_prob"][row], hmm.log_prob(single)[0], rtol=1e-6)
        unary, pairwise = hmm.posterior_marginals(single)
        np.testing.assert_allclose(batch["marginals"][0][row, :n], unary[0], atol=1e-6)
        np.testing.assert_allclose(batch["marginals"][1][row, :n - 1], pairwise[0], atol=1e-6)
        np.testing.assert_array_equal(batch["marginals"][0][row, n:], 0.0)
        np.testing.assert_array_equal(batch["marginals"][1][row, n - 1:], 0.0)
        np.testing.assert_array_equal(batch["viterbi"][row, :n], hmm.viterbi(single)[0])
        np.testing.assert_array_equal(batch["viterbi"][row, n:], 0)
        np.testing.assert_allclose(batch["entropy"][row], hmm.posterior_entropy(single)[0],
                                   rtol=1e-5)
        counts = [c + np.asarray(s) for c, s in zip(counts, hmm.expected_counts(single))]
    for got, want in zip(batch["counts"], counts):
        np.testing.assert_allclose(got, want, atol=1e-5)


def chi_square_p_value(samples, paths, probs):
    """p-value of path counts against exact probabilities (bins with expected count >= 5)."""
    index = {tuple(p): i for i, p in enumerate(paths)}
    observed = np.bincount([index[tuple(s)] for s in samples], minlength=len(paths))
    expected = probs * len(samples)
    keep = expected >= 5
    observed = np.append(observed[keep], observed[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    return scipy.stats.chisquare(observed, expected).pvalue


def test_posterior_samples_follow_the_exact_posterior():
    """FFBS on a padded batch: path frequencies vs enumeration (chi-square, seeded)."""
    rng = np.random.default_rng(6)
    k, v, t, lengths, n = 2, 3, 4, [4, 3], 4000
    params = random_hmm(rng, k, v)
    x, mask = padded(rng, lengths, t, v)
    for semiring in ("scaled", "log"):
        hmm = HMM(*[tf.constant(p, tf.float64) for p in params], semiring=semiring)
        draws = tf.function(hmm.posterior_sample)(x, mask, n=n, seed=7).numpy()
        assert draws.shape == (n, 2, t)
        for row, length in enumerate(lengths):
            ref = row_oracle(params, x[row, :length])
            np.testing.assert_array_equal(draws[:, row, length:], 0)
            assert chi_square_p_value(draws[:, row, :length], ref["paths"],
                                      ref["probs"]) > 1e-3
    # The same seed gives the same draws; the test fails if the sampler ignores the data.
    again = tf.function(hmm.posterior_sample)(x, mask, n=n, seed=7).numpy()
    np.testing.assert_array_equal(draws, again)


def test_prior_samples_follow_log_prob():
    rng = np.random.default_rng(8)
    k, v, t, n = 2, 2, 3, 4000
    params = random_hmm(rng, k, v)
    hmm = HMM(*[tf.constant(p, tf.float64) for p in params], num_steps=t)
    draws = hmm.sample(n, seed=9).numpy()
    assert draws.shape == (n, t)
    sequences = list(itertools.product(range(v), repeat=t))
    probs = np.exp(hmm.log_prob(np.array(sequences, np.int32)).numpy())
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)
    assert chi_square_p_value(draws, sequences, probs) > 1e-3


def log_space_reference(initial, transition, emission, x, length):
    """float64 forward-backward in log space: (log p(x), unary marginals [length, K])."""
    init, trans, emit = (log_softmax(p.astype(np.float64)) for p in (initial, transition,
                                                                       emission))
    obs = emit[:, x[:length]].T
    alpha = np.zeros((length, len(init)))
    beta = np.zeros((length, len(init)))
    alpha[0] = init + obs[0]
    for s in range(1, length):
        alpha[s] = scipy.special.logsumexp(alpha[s - 1][:, None] + trans, axis=0) + obs[s]
    for s in range(length - 2, -1, -1):
        beta[s] = scipy.special.logsumexp(trans + obs[s + 1] + beta[s + 1], axis=1)
    log_z = scipy.special.logsumexp(alpha[-1])
    return log_z, np.exp(alpha + beta - log_z)


def test_float32_is_stable_for_long_and_peaked_chains():
    """T = 1000, logits uniform in ±30: float32 (both semirings) vs a float64 log-space reference."""
    rng = np.random.default_rng(10)
    k, v, t, lengths = 5, 7, 1000, [1000, 637]
    params = [rng.uniform(-30, 30, size=s).astype(np.float32) for s in ((k,), (k, k), (k, v))]
    x, mask = padded(rng, lengths, t, v)

    @tf.function
    def run(x, mask):
        return [(h.log_prob(x, mask), h.posterior(x, mask).unary)
                for h in (HMM(*params), HMM(*params, semiring="log"))]

    for log_prob, unary in run(x, mask):
        for row, n in enumerate(lengths):
            ref_log_z, ref_unary = log_space_reference(*params, x[row], n)
            assert abs(log_prob[row].numpy() - ref_log_z) < 1e-5 * abs(ref_log_z)
            np.testing.assert_allclose(unary[row, :n], ref_unary, atol=2e-3)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(11)
    k, v = 2, 3
    x = tf.constant([[0, 2, 1], [1, 1, 0]])
    mask = tf.constant([[True, True, True], [True, True, False]])
    params = [tf.constant(p, tf.float64) for p in random_hmm(rng, k, v)]
    # Every parameter, through log p(x) (first order) and the entropy (second order: the
    # entropy is itself made from a gradient).
    for method in ("log_prob", "posterior_entropy"):
        for i in range(3):
            def fn(p, i=i, method=method):
                args = list(params)
                args[i] = p
                return getattr(HMM(*args), method)(x, mask)

            theoretical, numerical = tf.test.compute_gradient(fn, [params[i]])
            np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


def test_jit_compile_gives_the_same_log_prob_and_gradient():
    rng = np.random.default_rng(12)
    k, v, t = 4, 9, 12
    variables = [tf.Variable(p.astype(np.float32)) for p in random_hmm(rng, k, v)]
    x, mask = padded(rng, [12, 5, 9], t, v)

    def step(x, mask):
        with tf.GradientTape() as tape:
            log_prob = HMM(*variables).log_prob(x, mask)
            total = tf.reduce_sum(log_prob)
        return log_prob, tape.gradient(total, variables)

    plain = tf.function(step)(x, mask)
    compiled = tf.function(step, jit_compile=True)(x, mask)
    for a, b in zip(tf.nest.flatten(plain), tf.nest.flatten(compiled)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_batch_shapes_broadcast_like_tfp():
    rng = np.random.default_rng(13)
    k, v, t = 3, 4, 5
    initial = rng.normal(size=k)
    transition = rng.normal(size=(2, 1, k, k))
    emission = rng.normal(size=(3, k, v))
    x = rng.integers(0, v, size=(4, 1, 1, t)).astype(np.int32)  # sample axis 4
    hmm = HMM(initial, transition, emission)
    assert hmm.batch_shape == [2, 3]
    log_prob = hmm.log_prob(x)
    unary = hmm.posterior(x).unary
    paths = hmm.viterbi(x)
    assert log_prob.shape == [4, 2, 3] and unary.shape == [4, 2, 3, t, k]
    for s, i, j in itertools.product(range(4), range(2), range(3)):
        ref = row_oracle((initial, transition[i, 0], emission[j]), x[s, 0, 0])
        np.testing.assert_allclose(log_prob[s, i, j], ref["log_z"], rtol=1e-12)
        np.testing.assert_allclose(unary[s, i, j], ref["unary"], atol=1e-12)
        np.testing.assert_array_equal(paths[s, i, j], ref["viterbi"])
    assert hmm.posterior_sample(x, n=2, seed=1).shape == [2, 4, 2, 3, t]
    assert HMM(initial, transition, emission, num_steps=t).sample(5, seed=2).shape == [5, 2, 3, t]


def test_single_position_chains():
    rng = np.random.default_rng(14)
    params = random_hmm(rng, 3, 4)
    hmm = HMM(*params)
    x = np.array([[2], [0]], np.int32)
    for row in range(2):
        ref = row_oracle(params, x[row])
        np.testing.assert_allclose(hmm.log_prob(x)[row], ref["log_z"], rtol=1e-12)
        np.testing.assert_allclose(hmm.posterior(x).unary[row], ref["unary"], atol=1e-12)
        assert hmm.viterbi(x)[row, 0] == ref["viterbi"][0]


def assertion_messages(op):
    """The messages of the `Assert` ops `op` waits for (through data and control inputs)."""
    seen, stack, messages = set(), [op], []
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type == "Assert":
            messages += [str(t.op.get_attr("value")) for t in op.inputs[1:]
                         if t.op.type == "Const"]
        stack += [t.op for t in op.inputs] + list(op.control_inputs)
    return " ".join(messages)


@pytest.mark.parametrize("method", ["log_prob", "viterbi"])
def test_run_time_checks_precede_the_recursion(method):
    # A graph runs an assertion at some point of the step; unless the recursion waits for it, a
    # mismatched K can fail first in the recursion's multiply, with that op's message.
    emission = tf.constant(random_hmm(np.random.default_rng(0), 3, 4)[2])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64),
                                  tf.TensorSpec([None, None], tf.float64),
                                  tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None, None], tf.bool)])
    def run(initial, transition, x, mask):
        return getattr(HMM(initial, transition, emission), method)(x, mask)

    graph = run.get_concrete_function().graph
    # The recursion is a while loop, or a cond (the "auto" semiring's choice) holding loops.
    loops = [op for op in graph.get_operations()
             if op.type in ("While", "StatelessWhile", "If", "StatelessIf")]
    assert loops
    for loop in loops:
        messages = assertion_messages(loop)
        for check in ("number of states K", "token ids) must be >= 0",
                      "token ids) must be < the vocabulary", "prefix per row"):
            assert check in messages, (loop.name, check)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(15)
    k, v = 3, 4
    initial, transition, emission = random_hmm(rng, k, v)
    hmm = HMM(initial, transition, emission)
    with pytest.raises(ValueError, match="number of states K"):
        HMM(initial, rng.normal(size=(k + 1, k + 1)), emission)
    with pytest.raises(ValueError, match="number of states K"):
        HMM.from_log_potentials(initial, transition, rng.normal(size=(2, 5, k + 1)))
    with pytest.raises(ValueError, match="T-1"):
        HMM.from_log_potentials(initial, rng.normal(size=(3, k, k)), rng.normal(size=(5, k)),
                                per_step_transitions=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="token ids"):
        hmm.log_prob([[0, v]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="token ids"):
        hmm.viterbi([[0, -1]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="prefix"):
        hmm.log_prob([[0, 1, 2]], mask=[[True, False, True]])
    with pytest.raises(ValueError, match="positions"):
        hmm.log_prob([[0, 1, 2]], mask=[[True, False]])
    with pytest.raises(TypeError, match="integer"):
        hmm.log_prob([[0.0, 1.0]])
    with pytest.raises(ValueError, match="x=None"):
        HMM.from_log_potentials(initial, transition, rng.normal(size=(5, k))).log_prob([[0]])
    with pytest.raises(ValueError, match="num_steps"):
        hmm.sample(2)
    with pytest.raises(ValueError, match="batch shape"):
        HMM(rng.normal(size=(2, k)), rng.normal(size=(3, k, k)), emission)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64),
                                  tf.TensorSpec([None, None], tf.float64)])
    def dynamic_k(initial, transition):
        return HMM(initial, transition, emission).log_prob([[0, 1]])

    with pytest.raises(tf.errors.InvalidArgumentError, match="number of states K"):
        dynamic_k(initial[:2], transition)
