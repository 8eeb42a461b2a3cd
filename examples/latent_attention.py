"""Latent alignment (the tutorial's section 8): attention as a latent variable, Multi30k de→en.

    python examples/latent_attention.py [--data_dir DIR] [--steps 600] [--smoke]

Three `tflv.models.EncoderDecoder` translating German to English, identical but for how the
decoder uses the source:

- `soft`: the usual soft attention, p(y_t | ·) = f(Σ_s α_ts m_s), deterministic.
- `latent_exact`: the source position z_t ~ Cat(α_t) is latent; p(y_t | ·) = Σ_s α_ts
  f(m_s) by enumeration (exact marginal likelihood, Deng et al. 2018): `attention="latent"`
  with the estimator `Enumeration()`.
- `latent_elbo`: the same model trained on its ELBO with an inference network q(z_t | x, y)
  and the score-function estimator, `ScoreFunction(num_samples=2, baseline="leave_one_out")`
  (`GumbelSoftmax(...)` would train it by the relaxation).

It prints each model's validation perplexity (exact for soft and latent_exact; the ELBO's for
latent_elbo) and the BLEU of its greedy translations of the first validation sentences (on the
default settings, a few minutes on 2 CPU cores; `--smoke` leaves out the translations).
"""
from __future__ import annotations

import data
from common import evaluate, fit, parse_args

from tflv.models import EncoderDecoder
from tflv.vi.estimators import Enumeration, ScoreFunction

MODES = {"soft": {"attention": "soft"},
         "latent_exact": {"attention": "latent", "estimator": Enumeration()},
         "latent_elbo": {"attention": "latent",
                         "estimator": ScoreFunction(num_samples=2, baseline="leave_one_out")}}


def main(argv=None) -> dict[str, dict[str, float]]:
    args = parse_args(__doc__.splitlines()[0], steps=600, argv=argv)
    embed, hidden, batch_size, bleu_examples = (16, 32, 8, 16) if args.smoke else (64, 128, 32, 500)
    # latent_exact scores every (target word, source position) pair: [B, T, S, V] logits.
    eval_size, eval_batches = (8, 1) if args.smoke else (16, 0)
    corpus = data.load("multi30k", args.data_dir)
    train = corpus.dataset("train", "parallel", batch_size, shuffle=True, max_length=30)
    valid = corpus.dataset("valid", "parallel", eval_size)
    results = {}
    for name, mode in MODES.items():
        model = EncoderDecoder(corpus.info["source_vocab_size"], corpus.info["target_vocab_size"],
                               **mode, embed_dim=embed, hidden_dim=hidden,
                               max_decode_length=40, bleu_max_examples=bleu_examples)
        fit(model, train, args.steps)
        metrics = evaluate(model, valid, eval_batches)
        line = f"{name:>12}: valid ppl {metrics['ppl']:8.1f}"
        if not args.smoke:  # greedy decoding compiles a while loop per model: not in seconds
            metrics.update(model.evaluate_corpus(corpus, "valid", eval_size))
            line += f"   BLEU (first {bleu_examples} sentences) {metrics['bleu']:5.2f}"
        results[name] = metrics
        print(line)
    return results


if __name__ == "__main__":
    main()
