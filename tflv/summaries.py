"""TensorBoard views of results a person would rather see than read: tables and heat maps.

Each function writes to the default summary writer, the one a trainer makes current with
`writer.as_default(step=...)` (as `trainers.train` does around
`LatentVariableModel.evaluate_corpus`), and writes nothing without one (returning False, as
`tf.summary` does), so a model can call them unconditionally:

    >>> import tempfile
    >>> logdir = tempfile.mkdtemp()                         # e.g. runs/x/summaries
    >>> counts = np.array([[8.0, 2.0], [1.0, 9.0]])         # state × tag
    >>> with tf.summary.create_file_writer(logdir).as_default(step=100):
    ...     _ = text_table("test/topics", ["topic", "words"], [[0, "game team season"]])
    ...     _ = heatmap("test/state_tag_confusion", counts / counts.sum(1, keepdims=True))
    >>> sorted(read_events(logdir))
    ['test/state_tag_confusion', 'test/topics']

TensorBoard shows a text summary as rendered Markdown (its "Text" tab) and an image summary under
"Images"; `read_events` gives them back to a program.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf


def text_table(name: str, header: Sequence[str], rows: Sequence[Sequence]) -> tf.Tensor:
    """A Markdown table, one row per entry of `rows` (each as long as `header`), as text."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row of summary {name!r} needs {len(header)} cells ({header})")
    cell = lambda value: str(value).replace("|", "\\|")
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return tf.summary.text(name, "\n".join(lines))


def heatmap(name: str, matrix, cell: int = 8) -> tf.Tensor:
    """A non-negative matrix `[R, C]` as a grayscale image `[R·cell, C·cell]`.

    Entry (r, c) is the `cell`×`cell` block at row r, column c, its brightness the entry over the
    matrix's largest, rounded to 8 bits (white: the largest, black: 0; an all-zero matrix is
    black).
    """
    values = np.asarray(matrix, np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"summary {name!r} needs a non-empty matrix [R, C], got {values.shape}")
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise ValueError(f"summary {name!r} needs finite entries >= 0")
    peak = values.max()
    brightness = values / peak if peak > 0 else values  # [R, C] in [0, 1]
    image = np.round(255 * np.kron(brightness, np.ones((cell, cell)))).astype(np.uint8)
    return tf.summary.image(name, image[None, :, :, None], max_outputs=1)  # [1, R·cell, C·cell, 1]


def read_events(directory: str) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every summary in the event files of `directory`: tag → [(step, value)] in file order.

    The value is the summary's tensor: a scalar; a text summary's strings; an image summary's
    `[width, height, png...]` strings (`tf.io.decode_png` reads the PNGs).
    """
    found = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(
                    (event.step, tf.make_ndarray(value.tensor)))
    return found
