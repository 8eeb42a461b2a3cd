"""The trainer's absl flags, defined once for `train`, `evaluate` and `export`.

Run flags (DESIGN.md): --model --dataset --data_dir --train_steps --batch_size --strategy
--model_dir --export_dir. Model hyperparameters (`MODEL_FLAGS`) are generated from the fields of
the models' typed configs (`tflv.models.config`: name, type, default, documentation, valid
range), so they are defined once, in the models; a flag set on the command line that the chosen
model's settings never read is an error.
"""
import dataclasses
import re
import types
import typing
from typing import Any, Mapping

from absl import app, flags

from tflv.models import MODELS
from tflv.models.config import ConfigError
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
flags.DEFINE_integer("bucket_width", 0, "Batch training sentences (and sentence pairs) with "
                     "lengths in the same bucket of this width, so batches carry less padding "
                     "(0: shuffled batches of any lengths). Fixes the batch order: recorded with "
                     "the run.")

# Model hyperparameters: one flag per field of the models' configs (`tflv.models.config`), with
# the field's type, default and documentation; a name several models share must agree on its
# default and type in all of them (checked here, at import).
def model_fields() -> dict[str, list[tuple[str, dataclasses.Field, Any]]]:
    """`{field name: [(model, field, type)]}` over every registered model's `Config`, in
    registry then field order.

    Raises:
      TypeError: two models declare one name with different defaults or types.
    """
    fields: dict[str, list] = {}
    for model, model_cls in MODELS.items():
        hints = typing.get_type_hints(model_cls.Config)
        for field in dataclasses.fields(model_cls.Config):
            fields.setdefault(field.name, []).append((model, field, hints[field.name]))
    for name, uses in fields.items():
        kinds = {(repr(field.default), str(hint)) for _, field, hint in uses}
        if len(kinds) > 1:
            raise TypeError(f"the models' configs declare {name} differently: " + "; ".join(
                f"{model}: {hint} = {field.default!r}" for model, field, hint in uses))
    return fields


def _model_flag_help(uses) -> str:
    """The field's documentation; a field of few models is prefixed by their names (the help's
    model sections, `cli.model_flag_groups`), one documented differently by each model's."""
    docs: dict[str, list[str]] = {}
    for model, field, _ in uses:
        docs.setdefault(field.metadata["doc"], []).append(model)
    if len(docs) == 1:
        (doc, models), = docs.items()
        names_a_model = any(re.search(rf"(?<![\w-]){re.escape(m)}(?!\w)", doc) for m in MODELS)
        return doc if len(models) > 3 or names_a_model else f"{', '.join(models)}: {doc}"
    return "; ".join(f"{', '.join(models)}: {doc.rstrip('.')}" for doc, models in docs.items())


def _define_model_flag(name: str, uses) -> None:
    _, field, hint = uses[0]
    default, meta, text = field.default, field.metadata, _model_flag_help(uses)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)  # `int | None`
    base = next(t for t in typing.get_args(hint) if t is not type(None)) if optional else hint
    if meta["choices"] is not None:
        flags.DEFINE_enum(name, default, list(meta["choices"]), text)
    elif base is bool:
        flags.DEFINE_bool(name, default, text)
    elif base is int:
        flags.DEFINE_integer(name, default, text)
    elif base is float:
        flags.DEFINE_float(name, default, text)
    elif base is str:  # free text the model parses (e.g. a recipe with settings)
        flags.DEFINE_string(name, default, text)
    elif typing.get_origin(base) is tuple:
        flags.DEFINE_list(name, [str(v) for v in default], text)
    else:
        raise TypeError(f"no flag type for config field {name}: {hint}")
    if meta["at_least"] is not None:
        _AT_LEAST[name] = meta["at_least"]
    if meta["positive"]:
        _POSITIVE.append(name)
    if meta["unit_interval"]:
        _UNIT_INTERVAL.append(name)


def model_config(model_cls, values: Mapping[str, Any]):
    """`model_cls.Config` of the flag values `values` (`{flag: value}`, e.g. a run record's
    hparams); names it lacks keep their defaults.

    Raises:
      app.UsageError: a value the config refuses, naming its flag.
    """
    try:
        return model_cls.Config.pick(values)
    except ConfigError as err:
        raise app.UsageError(as_flags(err)) from None


def as_flags(err: ConfigError) -> str:
    """The message of a config error with its fields named as flags (`--name`)."""
    text = str(err)
    for name in err.fields:
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?!\w)", f"--{name}", text)
    return text


# Checked where parsed (absl validators): a bad value stops the command line with the flag's name
# before anything runs, instead of a loss that climbs or a ZeroDivisionError mid-run.
# (Model hyperparameters: the bounds their config fields declare, below.)
_AT_LEAST = {"train_steps": 1, "batch_size": 1, "eval_batch_size": 1, "log_every": 1,
             "checkpoint_every": 1, "eval_every": 0, "max_eval_batches": 0, "num_cpu_devices": 0,
             "seq_len": 1, "max_length": 0, "bucket_width": 0, "clip_norm": 0}
_POSITIVE = ["learning_rate", "worker_timeout"]
_UNIT_INTERVAL: list[str] = []  # probabilities in [0, 1)


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


_MODEL_FIELDS = model_fields()
MODEL_FLAGS = tuple(_MODEL_FIELDS)
for _name, _uses in _MODEL_FIELDS.items():
    _define_model_flag(_name, _uses)
_register_validators()


@flags.validator("topic_recipe")
def _check_topic_recipe(value) -> bool:
    """--topic_recipe parses (`parse_recipe`), or the command line stops with its error."""
    if value is not None:
        from tflv.models.topic_models import parse_recipe
        try:
            parse_recipe(value)
        except ValueError as error:
            raise flags.ValidationError(f"--topic_recipe: {error}") from None
    return True

KL_WARMUP_FRACTION = 0.5  # --kl_warmup_steps default: β reaches 1 at mid-training


def default_kl_warmup_steps(train_steps: int) -> int:
    """The `--kl_warmup_steps` a run without the flag uses: a fraction of `--train_steps`, so an
    annealed KL weight reaches 1 within training whatever its length."""
    return max(1, round(KL_WARMUP_FRACTION * train_steps))


FLAGS = flags.FLAGS
