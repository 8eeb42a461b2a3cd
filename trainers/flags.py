"""The trainer's absl flags, defined once for `train`, `evaluate` and `export`.

Run flags (DESIGN.md): --model --dataset --data_dir --train_steps --batch_size --strategy
--model_dir --export_dir. Model hyperparameters are listed in `MODEL_FLAGS`: every model reads
the ones it needs through `tflv.models.HParams`, and a flag set on the command line that the
chosen model never reads is an error.
"""
from absl import flags

from trainers import corpus_flags  # noqa: F401  (the corpus flags: --tokenizer, --vocab_size …)
from trainers.loop import JIT_COMPILE, LEARNING_RATE_SCHEDULES, MIXED_PRECISION

flags.DEFINE_string("model", "rnnlm", "Model name (tflv.models.MODELS).")
flags.DEFINE_string("dataset", "ptb", "Dataset name (data.DATASETS).")
flags.DEFINE_string("data_dir", None, "Corpora root (default: env TFLV_DATA_DIR, else "
                    "../shared/data beside the repository).")
flags.DEFINE_integer("train_steps", 1000, "Total optimizer steps (a resumed run continues to it).")
flags.DEFINE_integer("batch_size", 32, "Global batch size (split across replicas).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy: one device, all local GPUs (or CPU devices), or "
                  "several machines from TF_CONFIG.")
flags.DEFINE_float("worker_timeout", 120.0, "--strategy=multi_worker: the longest wait on another "
                   "worker (joining at start, one collective step, heartbeats), in seconds; past "
                   "it the job stops with a message.")
flags.DEFINE_string("model_dir", None, "Checkpoints and TensorBoard summaries (default "
                    "runs/MODEL_DATASET).")
flags.DEFINE_string("export_dir", None, "If set, write a SavedModel here after training.")
flags.DEFINE_integer("seed", 0, "Seed for initialisation, shuffling and sampling.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate.")
flags.DEFINE_enum("learning_rate_schedule", "constant", list(LEARNING_RATE_SCHEDULES),
                  "Decay of --learning_rate to 0 at --train_steps (constant: none).")
flags.DEFINE_float("clip_norm", 5.0, "Global gradient-norm clipping (0 disables).")
flags.DEFINE_enum("mixed_precision", "float32", list(MIXED_PRECISION), "bfloat16: train under "
                  "Keras' mixed_bfloat16 policy (layers compute in bfloat16; variables, "
                  "checkpoints, losses, log-probabilities and KL terms stay float32; no loss "
                  "scaling is needed). Evaluation and export after training run in float32.")
flags.DEFINE_enum("jit_compile", "auto", list(JIT_COMPILE), "Compile the training step with XLA: "
                  "auto = for runs of 100 steps or more whose batch shapes are fixed, where the step compiles (else the graph "
                  "step, with one log line saying why); true = always (an error if it cannot); "
                  "false = never.")
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
flags.DEFINE_integer("embed_dim", 256, "Token embedding size; GSM's topic and word embedding size.")
flags.DEFINE_integer("hidden_dim", 256, "RNN state size; hidden width of bag-of-words encoders.")
flags.DEFINE_integer("num_layers", 1, "Stacked RNN layers; bag-of-words encoder hidden layers.")
flags.DEFINE_float("dropout", 0.0, "Dropout rate.")
flags.DEFINE_bool("tie_embeddings", False, "Share input embeddings and output projection.")
flags.DEFINE_integer("num_topics", 50, "Topics K of lda, gsm, prodlda (nvdm: latent dimension).")
flags.DEFINE_enum("topic_decoder", None, ["mixture", "log_linear"], "gsm, prodlda: p(w | θ) as a "
                  "mixture of topics or log-linear in θ (default: gsm mixture, nvdm and prodlda "
                  "log_linear; gsm log_linear = GSM as a document model, prodlda mixture = NVLDA).")
flags.DEFINE_enum("topic_recipe", None, ["srivastava_sutton", "nvdm"], "nvdm, gsm, prodlda: "
                  "training recipe (default: prodlda srivastava_sutton = batch norm, dropout, Adam "
                  "beta1 0.99, two softplus layers of 100; nvdm and gsm nvdm = Miao et al.'s).")
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

# mixture_lm and sentence_vae (Models 1 and 2).
flags.DEFINE_integer("latent_dim", 32, "sentence_vae: latent dimension D; mixture_lm: width of the "
                     "component codes.")
flags.DEFINE_integer("num_components", 4, "mixture_lm: mixture components K.")
flags.DEFINE_enum("estimator", "exact", ["exact", "score_function", "gumbel_softmax"],
                  "mixture_lm: E_q by enumeration over the exact posterior, REINFORCE, or the "
                  "Gumbel-softmax relaxation.")
flags.DEFINE_integer("latent_samples", 1, "mixture_lm: samples of z per sentence "
                     "(score_function, gumbel_softmax).")
flags.DEFINE_enum("baseline", "none", ["none", "learned", "leave_one_out"],
                  "mixture_lm score_function control variate (leave_one_out: latent_samples >= 2).")
flags.DEFINE_float("gumbel_temperature", 1.0, "mixture_lm gumbel_softmax: temperature.")
flags.DEFINE_bool("straight_through", False, "mixture_lm gumbel_softmax: straight-through.")
flags.DEFINE_enum("latent", "gaussian", ["gaussian", "vmf"], "sentence_vae: posterior family.")
flags.DEFINE_float("vmf_concentration", 50.0, "sentence_vae --latent=vmf: the fixed kappa.")
flags.DEFINE_enum("flow", "none", ["none", "iaf", "planar"], "sentence_vae: posterior flow.")
flags.DEFINE_integer("num_flows", 2, "sentence_vae --flow: flow layers.")
flags.DEFINE_enum("decoder", "rnn", ["rnn", "cnn"], "sentence_vae: LSTM or dilated CNN decoder.")
flags.DEFINE_list("cnn_dilations", ["1", "2", "4"], "sentence_vae --decoder=cnn: dilations.")
flags.DEFINE_bool("skip_connections", False, "sentence_vae: z feeds every decoder layer.")
flags.DEFINE_float("word_dropout", 0.0, "sentence_vae: decoder input word dropout rate.")
flags.DEFINE_enum("kl_schedule", "none", ["none", "linear", "sigmoid", "cyclical"],
                  "sentence_vae: KL weight annealing.")
flags.DEFINE_integer("kl_warmup_steps", None, "sentence_vae --kl_schedule: steps to reach "
                     "weight 1 (cyclical: cycle length); default: KL_WARMUP_FRACTION = 1/2 of "
                     "--train_steps (a resumed run keeps the one it recorded).")
flags.DEFINE_float("free_bits", 0.0, "sentence_vae: free bits lambda in nats (0: off).")
flags.DEFINE_bool("free_bits_per_dimension", False, "sentence_vae --free_bits: per dimension.")
flags.DEFINE_integer("sa_vae_steps", 0, "sentence_vae: SA-VAE refinement steps (0: off).")
flags.DEFINE_float("sa_vae_step_size", 1.0, "sentence_vae --sa_vae_steps: step size.")
flags.DEFINE_float("sa_vae_max_grad_norm", 5.0, "sentence_vae --sa_vae_steps: clip each "
                   "example's refinement gradient to this norm (0: no clipping).")
flags.DEFINE_integer("iw_samples", 10, "sentence_vae: importance samples for the evaluation "
                     "NLL (0: ELBO only).")

# hmm, neural_hmm, factorial_hmm (Model 3).
flags.DEFINE_integer("num_states", 45, "hmm, neural_hmm: hidden states K; factorial_hmm: states "
                     "per chain.")
flags.DEFINE_enum("hmm_training", "gradient", ["gradient", "em"], "hmm: gradient ascent on log "
                  "p(x), or stepwise EM (one update per step, posteriors by autodiff).")
flags.DEFINE_float("em_decay", 0.7, "hmm --hmm_training=em: step sizes (k+1)^-decay (0: each "
                   "batch's counts replace the statistics; batch EM on a full batch).")
flags.DEFINE_float("em_pseudo_count", 0.01, "hmm --hmm_training=em: pseudo-count of the M step.")
flags.DEFINE_enum("neural_transitions", "mlp", ["mlp", "lstm"], "neural_hmm: transitions from "
                  "state embeddings, or also from an LSTM over the words so far.")
flags.DEFINE_integer("num_chains", 2, "factorial_hmm: Markov chains L.")
flags.DEFINE_enum("factorial_inference", "exact", ["exact", "mean_field"], "factorial_hmm: exact "
                  "log p(x) over K^L product states, or the structured mean-field ELBO.")
flags.DEFINE_integer("mean_field_iterations", 5, "factorial_hmm: mean-field sweeps.")
# hmm_lm (Chiu & Rush 2020; also reads num_states, embed_dim, hidden_dim).
flags.DEFINE_integer("num_blocks", 1, "hmm_lm: blocks M of states (a divisor of --num_states); "
                     "each word is emitted by one block, assigned round-robin by frequency.")
flags.DEFINE_float("state_dropout", 0.0, "hmm_lm: fraction of each block's states dropped per "
                   "training batch (renormalised over the kept states).")

# Checked where parsed (absl validators): a bad value stops the command line with the flag's name
# before anything runs, instead of a loss that climbs or a ZeroDivisionError mid-run.
_AT_LEAST = {"train_steps": 1, "batch_size": 1, "eval_batch_size": 1, "log_every": 1,
             "checkpoint_every": 1, "eval_every": 0, "max_eval_batches": 0, "num_cpu_devices": 0,
             "seq_len": 1, "max_length": 0, "clip_norm": 0, "embed_dim": 1, "hidden_dim": 1,
             "num_layers": 1, "num_topics": 1, "latent_dim": 1, "num_components": 1,
             "latent_samples": 1, "num_states": 1, "num_chains": 1, "num_softmaxes": 1,
             "beam_size": 1, "summary_length": 1, "free_bits": 0, "sa_vae_steps": 0,
             "iw_samples": 0, "kl_warmup_steps": 1, "num_flows": 1, "bleu_max_examples": 0,
             "em_pseudo_count": 0, "mean_field_iterations": 1, "attention_samples": 1,
             "summary_samples": 1, "sa_vae_max_grad_norm": 0, "em_decay": 0, "num_blocks": 1}
_POSITIVE = ("learning_rate", "worker_timeout", "gumbel_temperature", "vmf_concentration",
             "sa_vae_step_size")
_UNIT_INTERVAL = ("dropout", "word_dropout", "state_dropout")  # probabilities in [0, 1)


def _register_validators() -> None:
    for name, low in _AT_LEAST.items():
        flags.register_validator(name, lambda v, low=low: v is None or v >= low,
                                 message=f"--{name} must be >= {low}")
    for name in _POSITIVE:
        flags.register_validator(name, lambda v: v is None or (v > 0 and v < float("inf")),
                                 message=f"--{name} must be a finite number > 0")
    for name in _UNIT_INTERVAL:
        flags.register_validator(name, lambda v: v is None or 0 <= v < 1,
                                 message=f"--{name} must be in [0, 1)")


_register_validators()

KL_WARMUP_FRACTION = 0.5  # --kl_warmup_steps default: β reaches 1 at mid-training


def default_kl_warmup_steps(train_steps: int) -> int:
    """The `--kl_warmup_steps` a run without the flag uses: a fraction of `--train_steps`, so an
    annealed KL weight reaches 1 within training whatever its length."""
    return max(1, round(KL_WARMUP_FRACTION * train_steps))


MODEL_FLAGS = ("embed_dim", "hidden_dim", "num_layers", "dropout", "tie_embeddings", "num_topics",
               "topic_decoder", "attention_training", "attention_samples", "beam_size",
               "length_alpha", "bleu_max_examples", "num_softmaxes", "summary_length",
               "summary_samples", "latent_dim", "num_components", "estimator", "latent_samples",
               "baseline", "gumbel_temperature", "straight_through", "latent", "vmf_concentration",
               "flow", "num_flows", "decoder", "cnn_dilations", "skip_connections", "word_dropout",
               "kl_schedule", "kl_warmup_steps", "free_bits", "free_bits_per_dimension",
               "sa_vae_steps", "sa_vae_step_size", "sa_vae_max_grad_norm", "iw_samples",
               "num_states", "hmm_training", "em_decay", "em_pseudo_count", "neural_transitions",
               "num_chains", "factorial_inference", "mean_field_iterations",
               "topic_recipe", "num_blocks", "state_dropout")

FLAGS = flags.FLAGS
