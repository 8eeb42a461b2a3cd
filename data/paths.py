"""Where the corpora are: the data root and the folder of one corpus inside it.

The data root is, in order of precedence, the `--data_dir` flag, the environment variable
`TFLV_DATA_DIR`, or the folder `../shared/data` next to the repository root (found from this
file, never from the working directory). Inside it each corpus has one folder (`ptb/`, `20news/`,
`conll2000/` …) laid out as described in that folder's README.md.

#### References
No mathematics here.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from data.errors import CorpusNotFoundError

ENV_VAR = "TFLV_DATA_DIR"
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.normpath(os.path.join(_REPO_ROOT, os.pardir, "shared", "data"))


def resolve_data_dir(flag_value: str | None) -> str:
    """The data root: `flag_value` if given, else `$TFLV_DATA_DIR`, else `../shared/data`."""
    return os.path.abspath(flag_value or os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR)


def corpus_dir(data_dir: str, name: str, required_files: Iterable[str], source: str = "") -> str:
    """The folder `data_dir/name`, after checking that it holds every file of `required_files`.

    Args:
      data_dir: the data root (see `resolve_data_dir`).
      name: the corpus folder's name (`"ptb"`, `"20news"` …).
      required_files: paths relative to that folder.
      source: where the files come from, quoted in the error (the public source in the data README).

    Raises:
      CorpusNotFoundError: naming the folder, the missing files and how to get them.
    """
    folder = os.path.join(data_dir, name)
    required = list(required_files)
    missing = [f for f in required if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        where = f" from {source}" if source else ""
        raise CorpusNotFoundError(
            f"corpus {name!r} not found: expected the folder {folder} with the files "
            f"{', '.join(required)}; missing: {', '.join(missing)}. Set --data_dir or "
            f"${ENV_VAR} to the data root, or get the files{where} (see the data README.md); on a "
            "machine with network access the TFDS builders in `data.tfds` download and prepare "
            "them.")
    return folder
