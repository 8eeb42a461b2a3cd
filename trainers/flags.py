"""The trainer's absl flags, defined once for `train`, `evaluate` and `export`.

Run flags (DESIGN.md): --model --dataset --data_dir --train_steps --batch_size --strategy
--model_dir --export_dir. Model hyperparameters are listed in `MODEL_FLAGS`: every model reads
the ones it needs through `tflv.models.HParams`, and a flag set on the command line that the
chosen model never reads is an error.
"""
from absl import flags

flags.DEFINE_string("model", "rnnlm", "Model name (tflv.models.MODELS).")
flags.DEFINE_string("dataset", "ptb", "Dataset name (data.DATASETS).")
flags.DEFINE_string("data_dir", None, "Corpora root (default: env TFLV_DATA_DIR, else "
                    "../shared/data beside the repository).")
flags.DEFINE_integer("train_steps", 1000, "Total optimizer steps (a resumed run continues to it).")
flags.DEFINE_integer("batch_size", 32, "Global batch size (split across replicas).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy: one device, all local GPUs (or CPU devices), or "
                  "several machines from TF_CONFIG.")
flags.DEFINE_string("model_dir", None, "Checkpoints and TensorBoard summaries (default "
                    "runs/MODEL_DATASET).")
flags.DEFINE_string("export_dir", None, "If set, write a SavedModel here after training.")
flags.DEFINE_integer("seed", 0, "Seed for initialisation, shuffling and sampling.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate.")
flags.DEFINE_float("clip_norm", 5.0, "Global gradient-norm clipping (0 disables).")
flags.DEFINE_integer("log_every", 50, "Steps between progress lines and training summaries.")
flags.DEFINE_integer("checkpoint_every", 250, "Steps between checkpoints.")
flags.DEFINE_integer("eval_every", 0, "Steps between validation runs (0: only at the end).")
flags.DEFINE_integer("eval_batch_size", 64, "Global batch size for evaluation.")
flags.DEFINE_integer("max_eval_batches", 0, "Evaluate on at most this many batches (0: all).")
flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into this many logical devices "
                     "(for --strategy=mirrored without GPUs; 0 leaves it alone).")
# Dataset options.
flags.DEFINE_enum("news20_variant", "nvdm", ["nvdm", "prodlda"], "20 Newsgroups vocabulary.")
flags.DEFINE_integer("seq_len", 35, "Window length of the continuous LM stream (form `stream`).")
flags.DEFINE_integer("max_length", 0, "Drop training sentences longer than this (0: keep all).")

# Model hyperparameters (read through HParams).
flags.DEFINE_integer("embed_dim", 256, "Token embedding size.")
flags.DEFINE_integer("hidden_dim", 256, "RNN state size; hidden width of bag-of-words encoders.")
flags.DEFINE_integer("num_layers", 1, "Stacked RNN layers; bag-of-words encoder hidden layers.")
flags.DEFINE_float("dropout", 0.0, "Dropout rate.")
flags.DEFINE_bool("tie_embeddings", False, "Share input embeddings and output projection.")
flags.DEFINE_integer("num_topics", 50, "Topics K of lda, gsm, prodlda (nvdm: latent dimension).")
flags.DEFINE_enum("attention_training", "exact", ["exact", "elbo"], "latent_attention: train by "
                  "the exact marginal over source positions or by the ELBO (REINFORCE).")
flags.DEFINE_integer("attention_samples", 2, "latent_attention ELBO: samples of z_t per token "
                     "(>= 2, leave-one-out baseline).")
flags.DEFINE_integer("beam_size", 1, "Translation models: beam size for BLEU (1: greedy).")
flags.DEFINE_float("length_alpha", 0.0, "Beam search length-penalty exponent (Wu et al. 2016).")
flags.DEFINE_integer("bleu_max_examples", 0, "Translate at most this many sentences per split "
                     "for BLEU (0: all).")
flags.DEFINE_integer("num_softmaxes", 5, "mos_lm: mixture components K of the output softmax.")
flags.DEFINE_integer("summary_length", 5, "latent_summary: words M of the latent summary.")
flags.DEFINE_integer("summary_samples", 2, "latent_summary: samples of z per document (>= 2).")

MODEL_FLAGS = ("embed_dim", "hidden_dim", "num_layers", "dropout", "tie_embeddings", "num_topics",
               "attention_training", "attention_samples", "beam_size", "length_alpha",
               "bleu_max_examples", "num_softmaxes", "summary_length", "summary_samples")

FLAGS = flags.FLAGS
