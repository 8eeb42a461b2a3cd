"""Scores a trained neural_template run's generations with other template settings.

    python bench/neural_template_generation.py --model_dir=runs/ntemp_ar \
        [--num_templates=100] [--template_examples=0] [--splits=valid,test] [--beam_size=0]

Restores the run's newest checkpoint (as `tflv-eval` does), counts the Viterbi templates of the
first `--template_examples` training sentences (`NeuralTemplate._top_templates`), fills the
`--num_templates` most frequent for every distinct record set of each of `--splits` with
`fill_templates` (the model's generation) and prints the E2E challenge's metrics against all
references (`tflv.text_metrics.reference_set_scores`), as `evaluate_corpus` does, but with a
template table of any size: the run's checkpointed table has the size it was trained with.
Ends with one line `SCORES {json}` per split (`--splits=valid,test`: the templates counted once).
"""
import argparse
import json
import time

import numpy as np
import tensorflow as tf

from tflv.text_metrics import reference_set_scores
from trainers.run import restore_run
from trainers.run_flags import hparam_defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--num_templates", type=int, default=100)
    parser.add_argument("--template_examples", type=int, default=0, help="0: all")
    parser.add_argument("--splits", default="valid", help="comma-separated")
    parser.add_argument("--beam_size", type=int, default=0, help="0: the run's")
    args = parser.parse_args()
    _, corpus, trainer = restore_run(args.model_dir, defaults={"hparams": hparam_defaults()})
    model = trainer.model
    model.config["num_templates"] = args.num_templates
    model.config["template_examples"] = args.template_examples
    if args.beam_size:
        model.config["beam_size"] = args.beam_size
    start = time.time()
    templates = model._top_templates(corpus, 64)
    print(f"templates counted in {time.time() - start:.0f} s", flush=True)
    width = max(map(len, templates))
    table = tf.constant([list(t) + [-1] * (width - len(t)) for t in templates], tf.int32)
    lengths = tf.constant([len(t) for t in templates], tf.int32)
    fill = tf.function(model.fill_templates, reduce_retracing=True)

    def realise(source, pairs):
        ids, _, _ = fill(source, (source > 0).astype(np.float32), table, lengths)
        return model.ids_to_text(ids.numpy(), source, corpus)

    for split in args.splits.split(","):
        start = time.time()
        scores = reference_set_scores(corpus, split, max(1, 5120 // args.num_templates), 0,
                                      realise)
        print(f"{split}: generated and scored in {time.time() - start:.0f} s", flush=True)
        print("SCORES " + json.dumps({**vars(args), "split": split, **scores}), flush=True)


if __name__ == "__main__":
    main()
