"""The trainer's corpus flags, and how a `--dataset` and its options meet a model.

`--dataset` is a bundled corpus (`data.DATASETS`) or your own folder, `text:DIR`,
`parallel:DIR` or `tagged:DIR`, or a text dataset prepared in a TFDS data dir,
`tfds:NAME[/CONFIG][:FIELD]` (`data.GENERIC`). The flags below shape a generic corpus and are
refused for a bundled one (whose preprocessing is fixed):

    --tokenizer=whitespace|punctuation|characters  --lowercase  --unicode_form=NFC|NFKC|…
    --vocab_size=N (0: no cap)  --min_count=N  --max_line_tokens=N (0: keep all)
    --valid_fraction=F  --test_fraction=F  --split_seed=N   (a missing split is cut from train)
    --tag_column=C (tagged:DIR only)  --tfds_data_dir=DIR (tfds: only)

(`data.text_corpus` states what each one does). One applies to a bundled corpus: `--min_count`
to e2e (Wiseman et al. keep target words seen at least 10 times: `--min_count=10`). The run
records the dataset with DIR made absolute and every option's value, so that evaluation,
sampling and export rebuild the same corpus. A model reads batches of one form (`input_form`);
any corpus that offers that form fits it, and `check_model_fits` says which forms are missing
when one does not.
"""
from __future__ import annotations

import os
import re

from absl import app, flags

import data
from data.tokenize import TOKENIZERS, UNICODE_FORMS

flags.DEFINE_enum("tokenizer", "whitespace", list(TOKENIZERS), "text:, parallel: corpora: split "
                  "lines at whitespace, also split off punctuation, or into characters.")
flags.DEFINE_bool("lowercase", False, "Generic corpora: lower-case the text.")
flags.DEFINE_enum("unicode_form", None, list(UNICODE_FORMS), "Generic corpora: Unicode "
                  "normal form applied before tokenizing (default: none).")
flags.DEFINE_integer("vocab_size", 0, "Generic corpora: at most this many vocabulary ids, the "
                     "4 reserved ones included (0: no cap); the rest become <unk>.")
flags.DEFINE_integer("min_count", 1, "Generic corpora: words seen fewer times in train become "
                     "<unk>.")
flags.DEFINE_integer("max_line_tokens", 0, "Generic corpora: drop lines (sentences, pairs) with "
                     "more tokens than this from every split (0: keep all).")
flags.DEFINE_float("valid_fraction", 0.1, "Generic corpora without a valid file: the fraction "
                   "of train held out as valid (0: no valid split).")
flags.DEFINE_float("test_fraction", 0.1, "Generic corpora without a test file: the fraction of "
                   "train held out as test (0: no test split).")
flags.DEFINE_integer("split_seed", 0, "Generic corpora: seed of the held-out splits.")
flags.DEFINE_integer("tag_column", -1, "tagged: corpora: the column of the tag (the word is "
                     "column 0; -1: the last).")
flags.DEFINE_string("tfds_data_dir", None, "tfds: corpora: the TFDS data dir holding the prepared "
                    "dataset (default: TFDS's, $TFDS_DATA_DIR or ~/tensorflow_datasets).")

FLAGS = flags.FLAGS
CORPUS_FLAGS = ("tokenizer", "lowercase", "unicode_form", "vocab_size", "min_count",
                "max_line_tokens", "valid_fraction", "test_fraction", "split_seed", "tag_column",
                "tfds_data_dir")
# Per generic kind, the corpus flags that do not apply to it.
_NOT_FOR = {"text": {"tag_column", "tfds_data_dir"}, "parallel": {"tag_column", "tfds_data_dir"},
            "tagged": {"tokenizer", "tfds_data_dir"}, "tfds": {"tag_column"}}
_NONE_IF_ZERO = ("vocab_size", "max_line_tokens")
# Bundled corpora that take some corpus flags: passed when given (else the loader's default).
_BUNDLED = {"e2e": ("min_count",)}


def dataset_options(dataset: str) -> dict:
    """The loader options of `--dataset` from the flags (every option of a generic corpus).

    Raises:
      app.UsageError: for a corpus flag given with a dataset it does not apply to.
    """
    prefix, folder = data.split_name(dataset)
    applies = (_BUNDLED.get(dataset, ()) if folder is None else
               tuple(name for name in CORPUS_FLAGS if name not in _NOT_FOR[prefix]))
    misplaced = [name for name in CORPUS_FLAGS if FLAGS[name].present and name not in applies]
    if misplaced:
        raise app.UsageError(", ".join(f"--{name}" for name in misplaced) + f" does not apply to "
                             f"--dataset={dataset} (" + _where(misplaced) + ")")
    if folder is None:
        given = {name: FLAGS[name].value for name in applies if FLAGS[name].present}
        return {"variant": FLAGS.news20_variant, **given} if dataset == "news20" else given
    return {name: (FLAGS[name].value or None) if name in _NONE_IF_ZERO else FLAGS[name].value
            for name in applies}


def _where(names) -> str:
    if "tag_column" in names:
        return "--tag_column is for tagged:DIR corpora"
    if "tfds_data_dir" in names:
        return "--tfds_data_dir is for tfds:NAME corpora"
    if "tokenizer" in names:
        return "--tokenizer is for text:DIR and parallel:DIR corpora; tagged:DIR is tokenized " \
               "by its columns"
    return "corpus flags shape text:DIR, parallel:DIR and tagged:DIR corpora; a bundled " \
           "corpus' preprocessing is fixed (but e2e takes --min_count)"


def canonical_dataset(dataset: str) -> str:
    """`dataset` with a generic corpus' folder made absolute (a run may resume elsewhere)."""
    prefix, folder = data.split_name(dataset)
    if folder is None or prefix == "tfds":
        return dataset
    return f"{prefix}:{os.path.abspath(os.path.expanduser(folder))}"


def run_name(dataset: str) -> str:
    """A file-name-safe name of `dataset` for the default model directory (`text_mycorpus`)."""
    prefix, folder = data.split_name(dataset)
    if folder is None:
        return dataset
    base = (folder if prefix == "tfds" else
            os.path.basename(os.path.abspath(os.path.expanduser(folder))) or "corpus")
    return f"{prefix}_" + re.sub(r"[^\w.-]+", "_", base)


def check_model_fits(model: str, model_cls, dataset: str, corpus) -> None:
    """Refuses a corpus that does not offer the form of batches the model reads.

    Raises:
      app.UsageError: naming the form, the corpus' forms and the datasets that offer the form.
    """
    form = model_cls.input_form
    if form in corpus.forms:
        return
    offering = [*model_cls.datasets,
                *(f"{p}:NAME" if p == "tfds" else f"{p}:DIR"
                  for p, forms in data.GENERIC_FORMS.items() if form in forms)]
    raise app.UsageError(f"--model={model} reads batches of form {form!r}, which "
                         f"--dataset={dataset} does not offer (its forms: "
                         f"{', '.join(corpus.forms)}); datasets with {form!r}: "
                         f"{', '.join(offering)}")
