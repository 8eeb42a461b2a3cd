"""ProdLDA beside Pyro's ProdLDA, tflv's online-VB LDA and scikit-learn's LDA, on the same files.

    python bench/prodlda_pyro.py [--epochs=100] [--num_topics=50] [--lda_epochs=5]
        [--models=tflv_prodlda,pyro_prodlda,tflv_lda,sklearn_lda] [--data_dir=DIR]
        [--seed=0] [--tflv_recipe=srivastava_sutton:KEY=VALUE,...]

All four train on the 11,258 documents of `20news_prodlda/train.feat` (Srivastava & Sutton's
1,995-word vocabulary, ../shared/data/README.md) and are scored on its 7,487 test documents, with
the same code:

- NPMI (`tflv.metrics.npmi`): the mean over topics of the mean NPMI of the pairs among each
  topic's top 10 words, from document co-occurrence in two reference corpora: the test
  documents (`npmi test`, what the trainer reports) and all 18,745 documents (`npmi all`).
- diversity (`tflv.metrics.topic_diversity`): distinct words among all topics' top 25, over 25 K.
- perplexity: `ppl` = exp(mean_d −ELBO_d / N_d) (per document, Miao et al. 2016) and
  `ppl_corpus` = exp(−Σ_d ELBO_d / Σ_d N_d), the multinomial coefficient dropped, each neural
  model's ELBO from one draw of z at evaluation (batch-norm running moments, no dropout); KL the
  mean KL(q(z | n) || p(z)). The LDA rows bound log p(n) by their own variational bound on θ
  with the topics at their point estimate (scikit-learn's `perplexity` adds the topic-word
  Dirichlet term, which is taken out here: `_lda_topic_term`).

Rows:
- `tflv_prodlda`: `python -m trainers.train --model=prodlda` at its default recipe
  (Srivastava & Sutton 2017: batch 200, Adam 2e-3 with β1 = 0.99, batch norm, dropout 0.6,
  Laplace approximation of Dir(1) as the prior) for `--epochs` passes; top words by R.
  `--tflv_recipe` overrides recipe settings (`tflv.models.topic_models.parse_recipe`), e.g.
  `srivastava_sutton:bn_epsilon=1e-5,bn_momentum=0.9,initializer=torch,clip_norm=0,
  prior=standard_normal` for Pyro's settings (the ablations of BENCHMARKS.md).
- `pyro_prodlda`: a ProdLDA written here after Pyro's tutorial (pyro.ai, "Probabilistic Topic
  Modeling"): two softplus layers of 100, dropout 0.2, batch-normalised (affine=False) posterior
  moments and decoder logits, the logistic-normal prior N(0, I), `TraceMeanField_ELBO`, PyTorch's
  initialisers and BatchNorm1d's ε 1e-5 and momentum 0.1; its K = 20 replaced by `--num_topics`
  and its optimiser (Adam 1e-3, batch 32) by the tflv row's (`--pyro_lr=2e-3`,
  `--pyro_beta_1=0.99`, `--pyro_batch_size=200`), for `--epochs` passes over the shuffled
  training documents; top words by the decoder weight β, as the tutorial.
- `tflv_lda`: `python -m trainers.train --model=lda` (online VB, α = η = 1/K, τ0 = 10, κ = 0.7,
  batch 64) for `--lda_epochs` passes.
- `sklearn_lda`: `sklearn.decomposition.LatentDirichletAllocation`, online, the same α, η, τ0,
  κ and batch, `max_iter = --lda_epochs` passes over the training documents shuffled once
  (scikit-learn keeps the row order; in file order, grouped by newsgroup, its test perplexity
  after 5 passes was 3157 against 1020 for the same updates on shuffled batches in tflv).

Published (Srivastava & Sutton 2017, Table 1, K = 50 on this vocabulary): ProdLDA's NPMI about
0.24, as recalled in ../shared/data/README.md (not checked against the paper), by a scorer and
reference corpus of theirs. `--published_topics=AVTIM_50` (the file of their repository's
`coherence_from_paper_script/`, three runs of their topics with their coherence) scores their
topics by this bench's code: rows `published_1..3`, NPMI and the diversity of the top 10
(`div@10`, which every row reports; their top 25 are not published).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def load_counts(data_dir: str | None):
    """(train `[D, V]`, test `[D', V]` csr count matrices, vocabulary tokens), through tflv's
    reader (empty documents skipped)."""
    import data
    from data.paths import resolve_data_dir
    from tflv.models.topic_models import split_counts
    corpus = data.load("news20", data_dir=resolve_data_dir(data_dir), variant="prodlda")
    return (split_counts(corpus, "train", 1000), split_counts(corpus, "test", 1000),
            list(corpus.vocab.tokens))


def topic_scores(top_words: np.ndarray, test, everything) -> dict:
    """NPMI of the top 10 on the test and on all documents; diversity of the top 25 and of the
    top 10 (`diversity10`, the only one for topics known by their top 10)."""
    from tflv import metrics
    return {"npmi_test": float(metrics.npmi(top_words[:, :10], test).mean()),
            "npmi_all": float(metrics.npmi(top_words[:, :10], everything).mean()),
            "diversity": metrics.topic_diversity(top_words[:, :25]),
            "diversity10": metrics.topic_diversity(top_words[:, :10])}


def published_topics(path: str, test, everything, tokens) -> list[tuple[str, dict]]:
    """Rows `published_1`, ... scoring Srivastava & Sutton's published topics by the same code:
    `path` is their `coherence_from_paper_script/AVTIM_50` (github.com/akashgit/
    autoencoding_vi_for_topic_models: three runs of 50 topics "from the code used in the
    original paper", each topic a line "[c] w1 ... w10" with their coherence c). Their own mean
    coherence is in `settings`; the diversity of the top 25 is unknown (NaN)."""
    with open(path) as f:
        runs = [run for run in f.read().split("Average Topic Coherence") if "[0." in run]
    index = {w: i for i, w in enumerate(tokens)}
    rows = []
    for k, run in enumerate(runs, 1):
        lines = re.findall(r"^\[(-?\d\.\d+)\] (.+)$", run, flags=re.M)
        unknown = sorted({w for _, words in lines for w in words.split() if w not in index})
        if unknown or any(len(words.split()) != 10 for _, words in lines):
            raise ValueError(f"{path}: run {k}: expected lines '[c] w1 ... w10' of vocabulary "
                             f"words; unknown words {unknown[:10]}")
        top = np.asarray([[index[w] for w in words.split()] for _, words in lines])
        scores = topic_scores(top, test, everything)
        rows.append((f"published_{k}", {
            "steps": "–", "ppl": math.nan, "ppl_corpus": math.nan, "kl": math.nan,
            **scores, "diversity": math.nan, "seconds": math.nan,
            "recipe": f"S&S's topics, their coherence {np.mean([float(c) for c, _ in lines]):.3f}"}))
    return rows


def run_trainer(args: list[str], model_dir: str) -> tuple[dict, list[str]]:
    """Trains with `python -m trainers.train`; returns RESULT and the printed topic lines."""
    command = [sys.executable, "-m", "trainers.train", *args, f"--model_dir={model_dir}"]
    print("$ python -m trainers.train " + " ".join(command[3:]), flush=True)
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "log.txt"), "w") as f:
        f.write(proc.stdout)
    lines = proc.stdout.splitlines()
    result = json.loads([l for l in lines if l.startswith("RESULT ")][-1][len("RESULT "):])
    return result, [l for l in lines if l.startswith("topic ") and " npmi " in l]


def words_to_ids(topic_lines: list[str], tokens: list[str]) -> np.ndarray:
    """The top-10 word ids `[K, 10]` of the trainer's printed topics ("topic k npmi s unique u
    w1 ... w10"; the test-split topics, printed last)."""
    index = {w: i for i, w in enumerate(tokens)}
    rows = [[index[w] for w in line.split()[6:]] for line in topic_lines]
    return np.asarray(rows)


def tflv_prodlda(args, train, test, everything, tokens) -> dict:
    steps = args.epochs * math.ceil(train.shape[0] / 200)
    start = time.perf_counter()
    result, lines = run_trainer([
        "--model=prodlda", "--dataset=news20", "--news20_variant=prodlda",
        f"--num_topics={args.num_topics}", "--batch_size=200", f"--train_steps={steps}",
        "--eval_batch_size=500", "--log_every=1000", f"--checkpoint_every={steps}",
        f"--seed={args.seed}", *([f"--topic_recipe={args.tflv_recipe}"] if args.tflv_recipe
                                 else [])],
        os.path.join(args.model_root, "tflv_prodlda"))
    seconds = time.perf_counter() - start
    top = words_to_ids(lines[-args.num_topics:], tokens)  # top 10 only: diversity from RESULT
    scores = topic_scores(top, test, everything)  # its diversity10 from the printed top 10
    scores["diversity"] = result["diversity"]  # the trainer's, of the top 25
    return {"steps": steps, "ppl": result["ppl"], "ppl_corpus": result["ppl_corpus"],
            "kl": result["kl"], **scores, "seconds": seconds,
            "recipe": args.tflv_recipe or "srivastava_sutton (batch 200)"}


def pyro_prodlda(args, train, test, everything, tokens) -> dict:
    import pyro
    import pyro.distributions as dist
    import torch
    import torch.nn.functional as F
    from pyro.infer import SVI, TraceMeanField_ELBO
    from torch import nn

    torch.set_num_threads(1)  # 2 threads ran 12× slower per step on this shared 2-core machine
    torch.manual_seed(args.seed)
    pyro.set_rng_seed(args.seed)
    vocab, topics, hidden, dropout = train.shape[1], args.num_topics, 100, 0.2

    class Encoder(nn.Module):  # n → (μ, σ) of log θ, after Pyro's tutorial
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(vocab, hidden), nn.Linear(hidden, hidden)
            self.drop = nn.Dropout(dropout)
            self.fc_loc, self.fc_log_var = nn.Linear(hidden, topics), nn.Linear(hidden, topics)
            self.bn_loc = nn.BatchNorm1d(topics, affine=False)
            self.bn_log_var = nn.BatchNorm1d(topics, affine=False)

        def forward(self, counts):
            h = self.drop(F.softplus(self.fc2(F.softplus(self.fc1(counts)))))
            return self.bn_loc(self.fc_loc(h)), (0.5 * self.bn_log_var(self.fc_log_var(h))).exp()

    class Decoder(nn.Module):  # θ → log p(w | θ) = log softmax(BN(β θ))
        def __init__(self):
            super().__init__()
            self.beta = nn.Linear(topics, vocab, bias=False)
            self.bn = nn.BatchNorm1d(vocab, affine=False)
            self.drop = nn.Dropout(dropout)

        def forward(self, theta):
            return F.log_softmax(self.bn(self.beta(self.drop(theta))), dim=-1)

    encoder, decoder = Encoder(), Decoder()

    def model(counts):
        pyro.module("decoder", decoder)
        with pyro.plate("documents", counts.shape[0]):
            log_theta = pyro.sample("log_theta", dist.Normal(
                counts.new_zeros((counts.shape[0], topics)), 1.0).to_event(1))
            logits = decoder(F.softmax(log_theta, -1))
            # torch's Multinomial log_prob takes n = Σ counts per document; total_count unused
            pyro.sample("counts", dist.Multinomial(1, logits=logits, validate_args=False),
                        obs=counts)

    def guide(counts):
        pyro.module("encoder", encoder)
        with pyro.plate("documents", counts.shape[0]):
            loc, scale = encoder(counts)
            pyro.sample("log_theta", dist.Normal(loc, scale).to_event(1))

    pyro.clear_param_store()
    optimizer = pyro.optim.Adam({"lr": args.pyro_lr, "betas": (args.pyro_beta_1, 0.999)})
    svi = SVI(model, guide, optimizer, loss=TraceMeanField_ELBO())
    docs = torch.tensor(train.toarray(), dtype=torch.float32)
    batch, steps = args.pyro_batch_size, 0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        encoder.train(), decoder.train()
        order, loss = torch.randperm(docs.shape[0]), 0.0
        for i in range(0, docs.shape[0], batch):
            loss += svi.step(docs[order[i:i + batch]])
            steps += 1
        if (epoch + 1) % 10 == 0 or epoch == 0:
            print(f"pyro epoch {epoch + 1}  loss/doc {loss / docs.shape[0]:.1f}  "
                  f"{time.perf_counter() - start:.0f}s", flush=True)
    seconds = time.perf_counter() - start
    encoder.eval(), decoder.eval()
    with torch.no_grad():
        counts = torch.tensor(test.toarray(), dtype=torch.float32)
        loc, scale = encoder(counts)
        z = loc + scale * torch.randn(loc.shape, generator=torch.Generator().manual_seed(0))
        log_likelihood = (counts * decoder(F.softmax(z, -1))).sum(-1)
        kl = (0.5 * (scale ** 2 + loc ** 2 - 1) - scale.log()).sum(-1)  # KL(q || N(0, I))
        elbo, lengths = (log_likelihood - kl).numpy(), counts.sum(-1).numpy()
        top = torch.topk(decoder.beta.weight.T, 25, dim=-1).indices.numpy()  # [K, 25]
    for k, ids in enumerate(top):
        print(f"pyro topic {k:3d}  {' '.join(tokens[i] for i in ids[:10])}", flush=True)
    return {"steps": steps, "ppl": float(np.exp(np.mean(-elbo / lengths))),
            "ppl_corpus": float(np.exp(-elbo.sum() / lengths.sum())), "kl": float(kl.mean()),
            **topic_scores(top, test, everything), "seconds": seconds,
            "recipe": f"Pyro tutorial's model, N(0, I) prior; batch {batch}, Adam {args.pyro_lr:g} "
                      f"β1 {args.pyro_beta_1:g}"}


def tflv_lda(args, train, test, everything, tokens) -> dict:
    steps = args.lda_epochs * math.ceil(train.shape[0] / 64)
    start = time.perf_counter()
    result, lines = run_trainer([
        "--model=lda", "--dataset=news20", "--news20_variant=prodlda",
        f"--num_topics={args.num_topics}", "--batch_size=64", f"--train_steps={steps}",
        "--eval_batch_size=500", "--log_every=1000", f"--checkpoint_every={steps}",
        f"--seed={args.seed}"], os.path.join(args.model_root, "tflv_lda"))
    seconds = time.perf_counter() - start
    top = words_to_ids(lines[-args.num_topics:], tokens)
    scores = topic_scores(top, test, everything)
    scores["diversity"] = result["diversity"]
    return {"steps": steps, "ppl": result["ppl"], "ppl_corpus": result["ppl_corpus"],
            "kl": result["kl"], **scores, "seconds": seconds,
            "recipe": "online VB, batch 64, α = η = 1/K, τ0 10, κ 0.7"}


def _lda_topic_term(lda) -> float:
    """scikit-learn's bound's topic-word term E_q[log p(β | η) − log q(β | λ)]."""
    from scipy.special import digamma, gammaln
    lam, eta = lda.components_, lda.topic_word_prior_
    e_log_beta = digamma(lam) - digamma(lam.sum(1, keepdims=True))
    return float(np.sum((eta - lam) * e_log_beta) + np.sum(gammaln(lam) - gammaln(eta))
                 + np.sum(gammaln(eta * lam.shape[1]) - gammaln(lam.sum(1))))


def sklearn_lda(args, train, test, everything, tokens) -> dict:
    from sklearn.decomposition import LatentDirichletAllocation
    lda = LatentDirichletAllocation(
        n_components=args.num_topics, learning_method="online", learning_offset=10.0,
        learning_decay=0.7, batch_size=64, max_iter=args.lda_epochs, random_state=args.seed,
        total_samples=train.shape[0],  # D of the online update (scikit-learn default 1e6)
        n_jobs=1)
    # scikit-learn's online fit takes the minibatches in row order every pass; the file's
    # documents come grouped by newsgroup, so they are shuffled once (the others reshuffle)
    order = np.random.default_rng(args.seed).permutation(train.shape[0])
    start = time.perf_counter()
    lda.fit(train[order])
    seconds = time.perf_counter() - start
    scores = lda_bounds(lda.components_, lda.doc_topic_prior_, lda.topic_word_prior_,
                        train.shape[0], test)
    words = float(test.sum())
    own = math.exp(-(-math.log(lda.perplexity(test)) * words - _lda_topic_term(lda)) / words)
    print(f"sklearn_lda: its own perplexity less the topic-word term {own:.1f}, tflv's "
          f"ppl_corpus of its λ {scores['ppl_corpus']:.1f}", flush=True)
    top = np.argsort(-lda.components_, axis=1)[:, :25]
    return {"steps": args.lda_epochs * math.ceil(train.shape[0] / 64), **scores,
            **topic_scores(top, test, everything), "seconds": seconds,
            "recipe": "online VB, batch 64, α = η = 1/K, τ0 10, κ 0.7"}


def lda_bounds(topic_word, alpha: float, eta: float, num_documents: int, test) -> dict:
    """`ppl`, `ppl_corpus`, `kl` of an LDA with topics q(β_k) = Dir(λ_k), λ = `topic_word`
    `[K, V]`, scored on `test` by tflv's LDA evaluation (the same bound as the `tflv_lda` row)."""
    import tensorflow as tf
    from tflv.models.lda import LatentDirichletAllocation
    model = LatentDirichletAllocation(test.shape[1], topic_word.shape[0], num_documents,
                                      doc_topic_prior=alpha, topic_word_prior=eta)
    model.lda.topic_word.assign(np.asarray(topic_word, np.float64))
    sums = {}
    for i in range(0, test.shape[0], 500):
        stats = model.objective({"counts": tf.constant(test[i:i + 500].toarray(), tf.float32)}
                                ).stats
        for name, value in stats.items():
            sums[name] = sums.get(name, 0.0) + float(tf.reduce_sum(value))
    metrics = model.metrics_from_sums(sums)
    return {"ppl": metrics["ppl"], "ppl_corpus": metrics["ppl_corpus"], "kl": metrics["kl"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tflv_prodlda,pyro_prodlda,tflv_lda,sklearn_lda")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lda_epochs", type=int, default=5)
    parser.add_argument("--num_topics", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pyro_batch_size", type=int, default=200)
    parser.add_argument("--pyro_lr", type=float, default=2e-3)
    parser.add_argument("--pyro_beta_1", type=float, default=0.99)
    parser.add_argument("--tflv_recipe", default=None,
                        help="tflv_prodlda's --topic_recipe, e.g. srivastava_sutton:clip_norm=0 "
                             "(an ablation; default: prodlda's default recipe)")
    parser.add_argument("--published_topics", default=None,
                        help="Srivastava & Sutton's coherence_from_paper_script/AVTIM_50 (their "
                             "repository's): adds their published topics' rows, scored alike")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--model_root", default="runs/bench_prodlda_pyro")
    args = parser.parse_args()
    train, test, tokens = load_counts(args.data_dir)
    import scipy.sparse
    everything = scipy.sparse.vstack([train, test]).tocsr()
    rows = []
    for name in filter(None, args.models.split(",")):
        row = globals()[name](args, train, test, everything, tokens)
        print(f"{name} " + json.dumps(row), flush=True)
        rows.append((name, row))
    if args.published_topics:
        for name, row in published_topics(args.published_topics, test, everything, tokens):
            print(f"{name} " + json.dumps(row), flush=True)
            rows.append((name, row))
    epochs = lambda name: ("–" if name.startswith("published") else
                           args.lda_epochs if name.endswith("_lda") else args.epochs)
    fmt = lambda x, spec: "–" if isinstance(x, float) and math.isnan(x) else format(x, spec)
    print(f"\nK = {args.num_topics}; NPMI of the top 10 words; diversity of the top 25 and 10")
    print("| model | epochs | steps | NPMI test | NPMI all | diversity | div@10 | ppl | ppl_corpus "
          "| KL | train s | settings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in rows:
        print(f"| {name} | {epochs(name)} | {r['steps']} | {r['npmi_test']:.3f} "
              f"| {r['npmi_all']:.3f} | {fmt(r['diversity'], '.3f')} | {r['diversity10']:.3f} "
              f"| {fmt(r['ppl'], '.0f')} | {fmt(r['ppl_corpus'], '.0f')} | {fmt(r['kl'], '.1f')} "
              f"| {fmt(r['seconds'], '.0f')} | {r['recipe']} |", flush=True)


if __name__ == "__main__":
    main()
