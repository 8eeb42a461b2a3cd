"""Topic models (the tutorial's section 7): NVDM, GSM and ProdLDA on 20 Newsgroups.

    python examples/topic_models.py [--data_dir DIR] [--steps 1000] [--smoke]

Each document is a bag of words n ∈ N^V with a latent document code z; an inference network
(`tflv.layers.BagOfWordsEncoder` → `GaussianHead`) gives q(z | n) = N(μ, diag σ²) and the model
maximises the ELBO with one reparameterized sample:

- NVDM (Miao et al. 2016): θ = z ∈ R^K, p(w | z) = softmax(R z + b).
- GSM (Miao et al. 2017): θ = softmax(W z) on the simplex, a mixture of K topics softmax(T_k).
- ProdLDA (Srivastava & Sutton 2017): θ = softmax(z) with z's prior the Laplace approximation of
  a Dirichlet, p(w | θ) = softmax(R θ + b), a product of experts.

It prints each model's per-document perplexity bound and KL on the test split, and its topics'
ten most probable words with their NPMI coherence on the test documents (on the default
settings, a few minutes on 2 CPU cores).
"""
from __future__ import annotations

import data
from common import evaluate, fit, parse_args

from tflv.models import GSM, NVDM, ProdLDA


def main(argv=None) -> dict[str, dict[str, float]]:
    args = parse_args(__doc__.splitlines()[0], steps=1000, argv=argv)
    num_topics, hidden, batch_size = (5, 32, 16) if args.smoke else (20, 256, 64)
    corpus = data.load("news20", args.data_dir)
    train = corpus.dataset("train", "bow", batch_size, shuffle=True)
    results = {}
    for model_class in (NVDM, GSM, ProdLDA):
        name = model_class.__name__
        model = model_class(corpus.info["vocab_size"], model_class.default_topic_model,
                            num_topics=num_topics, hidden_units=(hidden,),
                            embed_dim=hidden if model_class is GSM else None)
        fit(model, train, args.steps, learning_rate=5e-4)
        print(f"{name}:")
        metrics = evaluate(model, corpus.dataset("test", "bow", 512), 2 if args.smoke else 0)
        metrics.update(model.evaluate_corpus(corpus, "test", 512))  # prints the topics
        results[name] = metrics
        print(f"{name}: test ppl {metrics['ppl']:.1f}   KL/document {metrics['kl']:.2f}   "
              f"mean NPMI {metrics['npmi']:+.3f}\n")
    return results


if __name__ == "__main__":
    main()
