"""Gradient estimators on one shared task: a sentence VAE on PTB, categorical or Gaussian z.

    python bench/estimators.py [--batch_size=16] [--num_estimates=30] [--pretrain_steps=40]

The model: an LSTM encoder over the sentence → q(z | x), z either categorical with K values
(uniform prior) or Gaussian N(0, I) in D dimensions, and the LSTM decoder `RNNDecoder`
conditioned on z (one-hot or real vector) reconstructing the sentence. The learning signal is
f(z) = log p(x | z) + log p(z) − log q(z | x), so every estimator targets the ELBO's gradient.
After `--pretrain_steps` Adam steps on the exact (categorical) or reparameterized (Gaussian) ELBO
and `--baseline_steps` steps that fit only the control variates, the parameters are frozen and each
estimator draws `--num_estimates` gradients of the inference network's weights (encoder and
head; the decoder's gradient is pathwise for all of them) on one fixed batch with different seeds.
The learned baseline is b(x) = running mean + BaselineHead(h(x)), an input-dependent residual
fitted by the surrogate's regression term (the centring of Mnih & Gregor 2014). Reported: the total
variance Σ_j Var(ĝ_j), its ratio to the plain score function of the same
latent family, the relative bias ||E ĝ − g|| / ||g|| against the exact gradient (categorical),
and the wall time of one full training step (all weights, Adam) under `tf.function`.
All sampling estimators use `--num_samples` samples per example; `exact` enumerates all K values.
Prints the Markdown rows of BENCHMARKS.md.

#### References
- Kim, Wiseman & Rush (2018), section 4 (gradient estimators), the claim that
  reparameterization has lower variance than the score function.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def build(args, vocab_size: int, family: str) -> dict:
    """The layers of one latent family's VAE (each family has its own weights)."""
    import keras

    from tflv.layers import BaselineHead, CategoricalHead, GaussianHead, RNNEncoder
    from tflv.layers.decoders import RNNDecoder
    keras.utils.set_random_seed(args.seed)
    head = (CategoricalHead(args.num_classes) if family == "categorical"
            else GaussianHead(args.latent_dim))
    return dict(encoder=RNNEncoder(vocab_size, args.embed_dim, args.hidden_dim), head=head,
                decoder=RNNDecoder(vocab_size, args.embed_dim, args.hidden_dim),
                learned_baseline=BaselineHead([args.hidden_dim]))


def make_objectives(args, parts: dict) -> dict:
    """name → (family, surrogate_fn(batch, seed) -> [B], the `tflv.vi.estimators` function)."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from tflv.layers import gaussian
    from tflv.vi import estimators
    tfd = tfp.distributions
    k, s = args.num_classes, args.num_samples

    def log_likelihood(layers, batch, z):  # z: [S, B, Z] → log p(x | z) [S, B]
        num, b = tf.shape(z)[0], tf.shape(z)[1]
        tile = lambda t: tf.reshape(tf.tile(t[None], [num, 1, 1]), [num * b, -1])  # noqa: E731
        logits = layers["decoder"](tile(batch["inputs"]), z=tf.reshape(z, [num * b, -1]),
                                  mask=tile(batch["mask"]))
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(tile(batch["targets"]), logits)
        return -tf.reshape(tf.reduce_sum(nll * tile(batch["mask"]), -1), [num, b])

    def encode(layers, batch):
        features = layers["encoder"](batch["inputs"], mask=batch["mask"] > 0)
        return features, tf.stop_gradient(features)

    moving_averages = {"cat": estimators.MovingAverageBaseline(0.9),
                       "gauss": estimators.MovingAverageBaseline(0.9)}

    def baseline_for(layers, kind, name, features, f):
        if kind == "moving_average":
            return moving_averages[name](f)
        if kind == "learned":  # input-dependent residual on a running mean (Mnih & Gregor 2014)
            return moving_averages[name](f) + layers["learned_baseline"](features)
        return estimators.leave_one_out_baseline(f) if kind == "leave_one_out" else None

    def categorical(kind):
        layers = parts["categorical"]

        def surrogate(batch, seed):
            features, fixed = encode(layers, batch)
            log_q = tf.nn.log_softmax(layers["head"](features))  # [B, K]

            def signal(z):  # z: [S, B, K] one-hot or relaxed → f [S, B]
                return (log_likelihood(layers, batch, z) - tf.math.log(float(k))
                        - tf.reduce_sum(z * log_q, -1))

            if kind == "exact":
                z = tf.tile(tf.eye(k)[:, None], [1, tf.shape(log_q)[0], 1])  # [K, B, K]
                return estimators.exact(log_q, tf.transpose(signal(z)))
            if kind in ("relaxed", "straight_through"):
                return estimators.gumbel_softmax(log_q, signal, args.temperature, s, seed,
                                                 straight_through=kind == "straight_through")
            index = tfd.Categorical(logits=log_q).sample(s, seed=seed)  # [S, B]
            z = tf.one_hot(index, k)
            f = signal(z)
            chosen = tf.reduce_sum(z * log_q, -1)
            return estimators.score_function(chosen, f,
                                             baseline_for(layers, kind, "cat", fixed, f))
        return surrogate

    def continuous(kind):
        layers = parts["gaussian"]

        def surrogate(batch, seed):
            features, fixed = encode(layers, batch)
            q = gaussian(layers["head"](features))
            prior = tfd.MultivariateNormalDiag(tf.zeros([args.latent_dim]))
            z = q.sample(s, seed=seed)  # [S, B, D]
            if kind != "reparameterized":
                z = tf.stop_gradient(z)
            f = log_likelihood(layers, batch, z) + prior.log_prob(z) - q.log_prob(z)
            if kind == "reparameterized":
                return estimators.reparameterized(f, q)
            return estimators.score_function(q.log_prob(z), f,
                                             baseline_for(layers, kind, "gauss", fixed, f))
        return surrogate

    sf_kinds = ("none", "moving_average", "learned", "leave_one_out")
    table = {f"categorical / {n}": ("categorical", categorical(n), "score_function")
             for n in sf_kinds}
    table.update({"categorical / exact": ("categorical", categorical("exact"), "exact"),
                  "categorical / gumbel_softmax relaxed": ("categorical", categorical("relaxed"),
                                                           "gumbel_softmax"),
                  "categorical / gumbel_softmax straight-through": (
                      "categorical", categorical("straight_through"), "gumbel_softmax")})
    table.update({f"gaussian / {n}": ("gaussian", continuous(n), "score_function")
                  for n in sf_kinds})
    table["gaussian / reparameterized"] = ("gaussian", continuous("reparameterized"),
                                           "reparameterized")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=20)
    parser.add_argument("--num_classes", type=int, default=5)
    parser.add_argument("--latent_dim", type=int, default=8)
    parser.add_argument("--embed_dim", type=int, default=32)
    parser.add_argument("--hidden_dim", type=int, default=64)
    parser.add_argument("--num_samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--pretrain_steps", type=int, default=40)
    parser.add_argument("--baseline_steps", type=int, default=60)
    parser.add_argument("--num_estimates", type=int, default=30)
    parser.add_argument("--timing_steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import data
    tf.get_logger().setLevel("ERROR")
    corpus = data.load("ptb", args.data_dir)
    batches = iter(corpus.dataset("train", "sentences", args.batch_size, shuffle=True,
                                  seed=args.seed, repeat=True, max_length=args.max_length))
    parts = {family: build(args, corpus.info["vocab_size"], family)
             for family in ("categorical", "gaussian")}
    objectives = make_objectives(args, parts)
    model = ["encoder", "head", "decoder"]

    def weights(family, names):
        return [w for n in names for w in parts[family][n].trainable_weights]

    def trainer(surrogate, family, names, learning_rate=1e-3):
        """A compiled step maximizing the surrogate over the named layers' weights."""
        surrogate(next(batches), tf.constant([0, 0]))  # build the layers eagerly
        variables = weights(family, names)
        optimizer = keras.optimizers.Adam(learning_rate)
        optimizer.build(variables)

        @tf.function(reduce_retracing=True)
        def step(batch, seed):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(surrogate(batch, seed))
            if variables:
                optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss
        return step

    for family, reference in (("categorical", "categorical / exact"),
                              ("gaussian", "gaussian / reparameterized")):
        step = trainer(objectives[reference][1], family, model)
        for i in range(args.pretrain_steps):
            step(next(batches), tf.constant([i, 1]))

    fixed = next(batches)

    def gradient_fn(surrogate, variables):
        """A compiled seed ↦ flat gradient of the mean surrogate on the fixed batch."""
        @tf.function
        def gradient(seed):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(surrogate(fixed, seed))
            return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, variables)], 0)
        return gradient

    results = {}
    for name, (family, surrogate, function) in objectives.items():
        learned = "learned" in name
        if learned or "moving_average" in name:  # fit the control variate only
            step = trainer(surrogate, family, ["learned_baseline"] if learned else [], 1e-2)
            for i in range(args.baseline_steps):
                step(next(batches), tf.constant([i, 2]))
        gradient = gradient_fn(surrogate, weights(family, ["encoder", "head"]))
        estimates = np.stack([gradient(tf.constant([r, 3])).numpy()
                              for r in range(args.num_estimates)])
        step = trainer(surrogate, family, model + (["learned_baseline"] if learned else []))
        everything = [w for layer in parts[family].values() for w in layer.weights]
        snapshot = [w.numpy() for w in everything]
        step(fixed, tf.constant([0, 4]))  # trace
        start = time.perf_counter()
        for i in range(args.timing_steps):
            step(fixed, tf.constant([i, 5]))
        ms = 1000 * (time.perf_counter() - start) / args.timing_steps
        for w, value in zip(everything, snapshot):
            w.assign(value)  # the timing steps must not move the weights the next rows measure
        results[name] = (family, function, estimates, ms)

    rows = []
    for name, (family, function, estimates, ms) in results.items():
        variance = estimates.var(0, ddof=1).sum()
        plain = results[f"{family} / none"][2].var(0, ddof=1).sum()
        bias = floor = "—"
        if family == "categorical":
            exact = results["categorical / exact"][2].mean(0)
            norm = np.linalg.norm(exact)
            bias = f"{np.linalg.norm(estimates.mean(0) - exact) / norm:.3f}"
            floor = f"{np.sqrt(variance / len(estimates)) / norm:.3f}"
        rows.append(f"| {name} | `{function}` | {variance:.4g} | {variance / plain:.3g} | {bias} "
                    f"| {floor} | {ms:.0f} |")
    print("| latent / estimator | function | total gradient variance | ratio to plain score "
          "function | relative bias vs exact | its noise floor | ms per training step |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print("\ncommand: python bench/estimators.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
