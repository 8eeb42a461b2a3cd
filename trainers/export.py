"""SavedModel export of a trained run: `tflv.export.export_saved_model` from the command line.

    python -m trainers.export --model_dir=runs/rnnlm_ptb --export_dir=exported/rnnlm_ptb
    (or `tflv-train ... --export_dir=DIR` at the end of training; installed as `tflv-export`)

The run is restored from its record (`tflv_run.json`: the model, the dataset and its options,
the text pipeline among them) and its saved vocabularies, whatever the data root holds now, and
written by `tflv.export.export_saved_model`, the function a model trained in Python is exported
with. Every exported model has `score(text: string [N]) -> {log_prob [N], tokens [N],
unknown_words [N]}`, the log-probability (or its bound, for latent-variable models) of each
string read by the training's own text pipeline (`score(text, target)` for translation models);
a model adds its own signatures through `serving_signatures(batcher)`, built with
`tflv.models.serving`:

    sample      rnnlm, mos_lm, mixture_lm, sentence_vae,  (num_samples, max_length, temperature,
                hmm_lm                                     seed) -> {text [num_samples]}
    homotopy    sentence_vae                              (text [2], num_points, …) -> {text [P]}
    posterior   mixture_lm                                text [N] -> {probs [N, K]}
    tag         hmm, neural_hmm, factorial_hmm            text [N] -> {tags [N, T], lengths [N]}
    marginals   hmm, neural_hmm, factorial_hmm            text [N] -> {marginals [N, T, (L,) K],
                                                                       lengths [N]}
    topics      nvdm, gsm, prodlda, lda                   text [N] -> {theta [N, K]}
    translate   seq2seq, latent_attention, copy_attention text [N] -> {text [N]}
    summarize   latent_summary                            text [N] -> {text [N]}

(each per-text signature also returns `unknown_words [N]`). Serving over TensorFlow Serving's
REST API uses the same signatures, e.g. `POST /v1/models/tflv:predict` with
`{"signature_name": "score", "instances": [{"text": "a b"}]}` (README.md, "Export and serving").
The SavedModel loads with `tf.saved_model.load` alone: tflv need not be importable where it is
served.
"""
from __future__ import annotations

from absl import app

from tflv.export import ServingModule, TextBatcher, export_saved_model  # noqa: F401 (re-exported)
from trainers import cli
from trainers import flags as tflv_flags
from trainers.run_flags import restore_run

FLAGS = tflv_flags.FLAGS
HELP_SECTIONS = [("Flags of tflv-export", (
    ("model_dir", "A trained run: its tflv_run.json and checkpoints (required)."),
    ("export_dir", "Where to write the SavedModel, replacing what is there (required)."),
    "data_dir"))]


# The export itself is flag-free, in tflv.export; this module is its command line.
export_model = export_saved_model


def main(argv):
    del argv
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise app.UsageError("tflv-export needs --model_dir (a trained run) and --export_dir")
    run, corpus, trainer = restore_run(FLAGS.model_dir, TextBatcher)
    export_saved_model(trainer.model, corpus, FLAGS.export_dir)
    print(f"exported {run['model']} (step {trainer.step}) to {FLAGS.export_dir}")


def run():
    """Console-script entry point (`tflv-export`)."""
    cli.run(main, __doc__, HELP_SECTIONS)


if __name__ == "__main__":
    run()
