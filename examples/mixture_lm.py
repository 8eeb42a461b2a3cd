"""Model 1 of the tutorial: a mixture of K language models, fitted by three gradient estimators.

    python examples/mixture_lm.py [--data_dir DIR] [--steps 300] [--smoke]

Each PTB sentence draws one component z ∈ {1..K}; log p(x) = log Σ_k π_k p(x | z = k) is exact
by enumeration, so the example can show what each estimator of the ELBO's gradient
(`tflv.vi.estimators`, sections 5.1–5.2) gives for the same model and data:

- `exact`: q is the true posterior p(z | x); the ELBO equals log p(x) (EM's objective).
- `score_function`: an inference network q(z | x) and REINFORCE with the leave-one-out baseline.
- `gumbel_softmax`: the same network, a relaxed z and a reparameterized (biased) gradient.

It prints, on PTB's validation sentences, the exact perplexity, the ELBO per sentence and the gap
log p(x) − ELBO = KL(q(z | x) ‖ p(z | x)) ≥ 0, which is 0 for `exact` and measures how far the
inference network's posterior is from the true one (on the default settings, a few minutes on
2 CPU cores).
"""
from __future__ import annotations

import data
from common import evaluate, fit, parse_args

from tflv.models import MixtureLM

ESTIMATORS = {"exact": {}, "score_function": {"num_samples": 2, "baseline": "leave_one_out"},
              "gumbel_softmax": {"num_samples": 1, "temperature": 0.5}}


def main(argv=None) -> dict[str, dict[str, float]]:
    args = parse_args(__doc__.splitlines()[0], steps=300, argv=argv)
    size = dict(embed_dim=16, hidden_dim=32, code_dim=8) if args.smoke else \
        dict(embed_dim=64, hidden_dim=128, code_dim=16)
    batch_size, eval_size, eval_batches = (8, 16, 1) if args.smoke else (32, 64, 20)
    corpus = data.load("ptb", args.data_dir)
    train = corpus.dataset("train", "sentences", batch_size, shuffle=True, max_length=30)
    valid = corpus.dataset("valid", "sentences", eval_size)
    results = {}
    for name, options in ESTIMATORS.items():
        model = MixtureLM(corpus.info["vocab_size"], num_components=4, estimator=name,
                          **size, **options)
        fit(model, train, args.steps)
        metrics = evaluate(model, valid, eval_batches)
        gap = -metrics["sentence_nll"] - metrics["elbo"]  # log p(x) − ELBO, per sentence
        results[name] = {"ppl": metrics["ppl"], "elbo": metrics["elbo"], "gap": gap}
        print(f"{name:>15}: valid ppl {metrics['ppl']:8.1f}   ELBO/sentence {metrics['elbo']:9.2f}"
              f"   log p(x) - ELBO {gap:6.3f}   H[q(z|x)] {metrics['posterior_entropy']:.3f}")
    return results


if __name__ == "__main__":
    main()
