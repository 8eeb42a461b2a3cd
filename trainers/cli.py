"""What every command-line entry point shares: quiet TensorFlow, `--help` that explains the
command, and one line naming the devices and the strategy.

- Quiet by default. TensorFlow writes C++ log lines to stderr while it is imported (oneDNN,
  "Could not find cuda drivers", CPU instructions), when it first looks for a GPU (`failed call
  to cuInit`) and while it runs (oneDNN fall-backs), and Python warnings about retracing and
  deprecations. Unless `--verbosity` (absl: `-v N`, 0 = INFO) asks for them:
  `TF_CPP_MIN_LOG_LEVEL=3` (unless set in the environment), TensorFlow's import-time stderr
  held back (and shown if the import fails), TensorFlow's Python logger at ERROR, and
  deprecation warnings ignored. `quiet_tensorflow_import` runs from `trainers/__init__.py`, i.e.
  before any entry point imports TensorFlow, and only when the process is a command
  (`python -m trainers.…` or an installed `tflv-…` script); a library user's process is left
  alone.
- `--help` (`-h`, `--helpshort`) prints the command's docstring and then its own flags, grouped
  (for `tflv-train`: run flags, corpus flags, hyperparameters shared by several models, then
  each model's;
  `--model=NAME --help` shows only that model's); `--helpfull` keeps absl's list of every flag
  of every module.
- `device_line(strategy)`: e.g. `devices: CPU (no GPU)  strategy: default (1 replica)`.

    >>> verbosity_of(["tflv-train", "--model=hmm", "-v", "1"])
    1
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import textwrap
from typing import Callable, Sequence

HELP_ARGS = ("-h", "--help", "-?", "--helpshort")
# absl's verbosity → TF_CPP_MIN_LOG_LEVEL (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL only).
_CPP_LEVEL = {0: "0", -1: "1", -2: "2"}


def verbosity_of(argv: Sequence[str]) -> int | None:
    """The value of absl's `--verbosity`/`-v` in `argv`, or None if absent (read before absl
    parses the flags: TensorFlow's C++ log level must be set before TensorFlow is imported)."""
    args = list(argv[1:])
    if "--" in args:
        args = args[:args.index("--")]
    value = None
    for i, arg in enumerate(args):
        match = re.fullmatch(r"(?:--verbosity|-v)(?:=(.*))?", arg)
        if match:
            value = match.group(1) if match.group(1) is not None else (
                args[i + 1] if i + 1 < len(args) else None)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # absl names the bad value when it parses the flags


def is_command(argv: Sequence[str]) -> bool:
    """True when the process runs a command: `python -m trainers.X` (argv[0] is `-m` while the
    package is imported) or an installed `tflv-*` script."""
    return bool(argv) and (argv[0] == "-m" or os.path.basename(argv[0]).startswith("tflv-"))


def quiet_tensorflow_import(argv: Sequence[str] = sys.argv) -> None:
    """Imports TensorFlow with its C++ logging set from `--verbosity` (default: quiet)."""
    if "tensorflow" in sys.modules or not is_command(argv):
        return
    verbosity = verbosity_of(argv)
    level = "3" if verbosity is None else _CPP_LEVEL.get(max(min(verbosity, 0), -3), "3")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)
    if verbosity is not None and verbosity >= 0:
        import tensorflow  # noqa: F401 — the user asked to see everything
        return
    # What TensorFlow logs while its libraries load ignores TF_CPP_MIN_LOG_LEVEL: hold it back.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet_python_logs(verbosity_present: bool) -> None:
    """TensorFlow's Python logger at ERROR and deprecation warnings off, unless `--verbosity`
    was given (then absl's level applies to TensorFlow's logger too)."""
    import logging as std_logging
    import warnings

    import tensorflow as tf
    from absl import logging

    if verbosity_present:
        tf.get_logger().setLevel(logging.get_absl_logger().getEffectiveLevel())
        return
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel(std_logging.ERROR)  # retracing, deprecation notices
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)


def _flag_text(flag, text: str | None = None) -> str:
    """absl's layout: `--name: help` wrapped, then the default; `text` replaces the help."""
    default = "" if flag.default is None else f"\n    (default: {flag.default_as_str})"
    text = textwrap.fill(f"--{flag.name}: {text or flag.help}", width=98, initial_indent="  ",
                         subsequent_indent="    ")
    return text + default


def _model_of(argv: Sequence[str]) -> str | None:
    args = list(argv[1:])
    for i, arg in enumerate(args):
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg == "--model" and i + 1 < len(args):
            return args[i + 1]
    return None


def model_flag_groups(model_flags: Sequence[str], help_of: Callable[[str], str],
                      models: Sequence[str]) -> dict[str, list[str]]:
    """Model hyperparameters by the models their help names (`"sentence_vae: …"`, `"hmm, gsm
    …"`), in flag order; those naming no model are shared by several, under `""`."""
    groups: dict[str, list[str]] = {"": []}
    for name in model_flags:
        text = help_of(name)
        named = [m for m in models if re.search(rf"(?<![\w-]){re.escape(m)}(?!\w)", text)]
        for model in named or [""]:
            groups.setdefault(model, []).append(name)
    return groups


def help_text(doc: str, sections: Sequence[tuple[str, Sequence]], flag_values) -> str:
    """The command's docstring, then each section `(title, flags)`; a flag is its name, or
    `(name, help)` where the command reads it in its own sense."""
    parts = [textwrap.dedent(doc or "").strip(), ""]
    for title, names in sections:
        if not names:
            continue
        parts.append(f"{title}:")
        for item in names:
            name, text = (item, None) if isinstance(item, str) else item
            parts.append(_flag_text(flag_values[name], text))
        parts.append("")
    parts.append(textwrap.fill(
        "Logging: --verbosity=0 (-v 0) shows TensorFlow's and absl's INFO logs (default: only "
        "warnings and errors of tflv). Every flag of every module: --helpfull.", width=98))
    return "\n".join(parts)


def train_sections(argv: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`tflv-train`'s help: run flags, then model hyperparameters (one model's with --model)."""
    from absl import flags

    from tflv.models import MODELS
    from trainers import flags as tflv_flags

    values = flags.FLAGS
    model_flags = tflv_flags.MODEL_FLAGS
    run_flags = [f.name for f in values.get_flags_for_module("trainers.flags")
                 if f.name not in model_flags]
    groups = model_flag_groups(model_flags, lambda name: values[name].help, list(MODELS))
    corpus = [f.name for f in values.get_flags_for_module("trainers.corpus_flags")]
    sections = [("Run flags", run_flags),
                ("Corpus flags (your own corpora: --dataset=text:DIR, tagged:DIR, parallel:DIR, "
                 "tfds:NAME)", corpus),
                ("Model hyperparameters of several models", groups.pop(""))]
    chosen = _model_of(argv)
    sections += [(f"--model={model}", names) for model, names in groups.items()
                 if chosen in (None, model)]
    return sections


def run(main: Callable, doc: str, sections: Callable[[Sequence[str]], list] | list) -> None:
    """`absl.app.run(main)` with this module's `--help` and logging set-up.

    Args:
      main: the command's `main(argv)`.
      doc: the command's docstring (its usage).
      sections: `[(title, flag names)]` of its own flags, or a function of argv giving them.
    """
    from absl import app, flags

    def parse(argv):
        args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
        if any(arg in HELP_ARGS for arg in args):
            own = sections(argv) if callable(sections) else sections
            print(help_text(doc, own, flags.FLAGS))
            sys.exit(0)
        remaining = app.parse_flags_with_usage(argv)
        quiet_python_logs(flags.FLAGS["verbosity"].present)
        return remaining

    app.run(main, flags_parser=parse)


def device_line(strategy) -> str:
    """One line: the devices TensorFlow uses (GPU names, or CPU) and the strategy's replicas."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        devices = f"{len(gpus)} GPU ({', '.join(sorted(set(names)))})"
    else:
        devices = f"CPU (no GPU; {len(tf.config.list_logical_devices('CPU'))} logical device(s))"
    name = type(strategy).__name__
    if name == "_DefaultDistributionStrategy":
        name = "default"
    return f"devices: {devices}  strategy: {name} ({strategy.num_replicas_in_sync} replica(s))"
