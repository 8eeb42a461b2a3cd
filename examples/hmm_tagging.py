"""Model 3 of the tutorial: unsupervised part-of-speech induction with an HMM, exact inference.

    python examples/hmm_tagging.py [--data_dir DIR] [--steps 300] [--smoke]

A `tflv.distributions.HMM` with K hidden states over CoNLL-2000's words is fitted by gradient
ascent on the exact log-likelihood log p(x) = log Σ_z p(x, z) (the forward algorithm, batched and
masked); the gold tags are never seen. Each word is then tagged by its Viterbi state
argmax_z p(z | x), and the states are scored against the gold part-of-speech tags: many-to-one
accuracy (each state mapped to its most frequent tag), one-to-one accuracy (the best bijection)
and V-measure. The model is `tflv.models.HMMTagger` (free logits, as the trainer's `--model=hmm`);
a neural parameterization is `NeuralHMMTagger` (on the default settings, a few minutes on 2 CPU
cores).
"""
from __future__ import annotations

import data
from common import evaluate, fit, parse_args

from tflv.models import HMMTagger
from tflv.layers.hmm_parameterizations import HMMLogits


def main(argv=None) -> dict[str, float]:
    args = parse_args(__doc__.splitlines()[0], steps=300, argv=argv)
    num_states, batch_size = (8, 16) if args.smoke else (45, 64)
    corpus = data.load("conll2000", args.data_dir)
    model = HMMTagger(HMMLogits(num_states, corpus.info["vocab_size"], seed=0))
    train = corpus.dataset("train", "tokens", batch_size, shuffle=True)
    losses = fit(model, train, args.steps, learning_rate=0.1)
    metrics = evaluate(model, corpus.dataset("valid", "tokens", 256))
    metrics.update(model.evaluate_corpus(corpus, "valid", 256))
    print(f"K = {num_states} states, {args.steps} steps: NLL/token {losses[0]:.3f} -> "
          f"{losses[-1]:.3f} (train), valid ppl {metrics['ppl']:.1f}")
    print(f"tagging the valid split: many-to-one {metrics['many_to_one']:.3f}, "
          f"one-to-one {metrics['one_to_one']:.3f}, V-measure {metrics['v_measure']:.3f}")
    return metrics


if __name__ == "__main__":
    main()
