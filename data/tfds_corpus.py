"""A text dataset already prepared in a local TFDS data dir as a `Corpus`
(`data.load("tfds:NAME[/CONFIG][:FIELD]")`).

NAME[/CONFIG] is what `tfds.builder` takes (the project's own builders in `data.tfds` are
registered first: `tfds:ptb`, `tfds:news20/nvdm`, `tfds:conll2000`, `tfds:multi30k`); FIELD is
a feature of the examples holding text, a `Text` feature (one line of text) or a sequence of
`Text` (tokens, joined by spaces); it may be left out when the dataset has only one. Nothing is
downloaded or prepared here: the data dir is `tfds_data_dir` (default: TFDS's own,
`$TFDS_DATA_DIR` or `~/tensorflow_datasets`), and a dataset not prepared there raises
`CorpusNotFoundError` saying how to prepare it.

Each example's FIELD is one line of a `text:` corpus (`data.text_corpus`: the same tokenizer,
vocabulary and split options, forms `stream`, `sentences`, `tokens`, `bow`), streamed as a
`text:` folder is (`data.text_stream`): one scan over the examples for the vocabulary and the
sizes, then batches read from the prepared TFDS files each epoch. TFDS splits
`train`, `validation` (or `valid`, `dev`) and `test` become `train`, `valid` and `test`; a
missing one is cut from train. Errors name the source as `tfds:NAME/SPLIT` and the example by
its 1-based position in the split (the `line`), e.g. for bytes that are not UTF-8.
`info["tfds"]` records the name, field and data dir.

#### References
TFDS, "Writing custom datasets", https://www.tensorflow.org/datasets/add_dataset.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from data.corpus import Corpus
from data.errors import CorpusNotFoundError, DataFormatError
from data.text_corpus import CorpusOptions
from data.text_stream import LineSource, from_sources

SPLIT_NAMES = {"train": "train", "validation": "valid", "valid": "valid", "dev": "valid",
               "test": "test"}


def parse(spec: str) -> tuple[str, str | None]:
    """`("NAME/CONFIG", "FIELD")` of `"NAME/CONFIG:FIELD"` (FIELD None when left out)."""
    name, _, field = spec.partition(":")
    if not name:
        raise ValueError(f"tfds:{spec} names no dataset: write tfds:NAME[/CONFIG][:FIELD]")
    return name, field or None


def load(spec: str, tfds_data_dir: str | None = None, **options) -> Corpus:
    """The `tfds:` corpus `spec` = `NAME[/CONFIG][:FIELD]` (options of `CorpusOptions`)."""
    import tensorflow_datasets as tfds

    import data.tfds  # noqa: F401  (registers the project's builders)

    opts = CorpusOptions(**options)
    name, field = parse(spec)
    try:
        builder = tfds.builder(name, data_dir=tfds_data_dir)
    except Exception as e:  # TFDS raises several types for an unknown name or config
        raise CorpusNotFoundError(f"tfds:{name}: no such TFDS dataset ({e})") from None
    if not _prepared(builder):
        raise CorpusNotFoundError(
            f"tfds:{name} is not prepared in {builder.data_dir}: prepare it first, e.g. "
            f"`tfds.builder({name!r}, data_dir=...).download_and_prepare()` (the builders in "
            "data.tfds also prepare offline from a manual folder), and pass that data dir as "
            "--tfds_data_dir")
    field = _text_field(name, builder.info.features, field, tfds)
    sources = {}
    for tfds_split in builder.info.splits:
        split = SPLIT_NAMES.get(tfds_split)
        if split is not None and split not in sources:
            label = f"tfds:{name}/{tfds_split}"
            sources[split] = LineSource(
                label, functools.partial(_lines, builder, tfds_split, field, label, tfds),
                functools.partial(_dataset, builder, tfds_split, field))
    if "train" not in sources:
        raise CorpusNotFoundError(f"tfds:{name} has no train split (its splits: "
                                  f"{', '.join(builder.info.splits)})")
    return from_sources(f"tfds:{spec}", sources, opts,
                      {"tfds": {"name": name, "field": field, "data_dir": builder.data_dir}})


def _prepared(builder) -> bool:
    return bool(builder.info.splits) and builder.data_path.exists()


def _text_field(name: str, features, field: str | None, tfds) -> str:
    """FIELD, checked to hold text; or the only text feature when FIELD is None."""

    def is_text(feature) -> bool:
        return isinstance(feature, tfds.features.Text) or (
            isinstance(feature, tfds.features.Sequence)
            and isinstance(feature.feature, tfds.features.Text))

    texts = [key for key, feature in features.items() if is_text(feature)]
    if field is None and len(texts) == 1:
        return texts[0]
    if field in texts:
        return field
    raise ValueError(f"tfds:{name}: " + (f"feature {field!r} is not text; " if field else
                                         "several text features; ")
                     + f"write tfds:{name}:FIELD with FIELD one of {', '.join(texts) or '(none)'}")


def _lines(builder, split: str, field: str, label: str, tfds) -> Iterator[tuple[int, str]]:
    """(1-based example number, text) of a split, in the order the builder stores them."""
    examples = builder.as_dataset(split=split, shuffle_files=False)
    for number, example in enumerate(tfds.as_numpy(examples), 1):
        value = example[field]
        parts = [value] if isinstance(value, bytes) else list(np.asarray(value).ravel())
        try:
            yield number, " ".join(part.decode("utf-8") for part in parts)
        except UnicodeDecodeError as e:
            raise DataFormatError(label, number, "UTF-8 text", repr(e.object)[:60]) from None


def _dataset(builder, split: str, field: str):
    """The split's texts as a tf.data.Dataset of strings (a sequence of `Text` joined by spaces),
    in the order `_lines` reads them."""
    examples = builder.as_dataset(split=split, shuffle_files=False)
    if examples.element_spec[field].shape.rank == 0:
        return examples.map(lambda example: example[field])
    return examples.map(lambda example: tf.strings.reduce_join(example[field], separator=" "))
