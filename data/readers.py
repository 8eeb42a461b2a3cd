"""Parsers of the corpus file formats, shared by the corpus modules and the TFDS builders.

Three formats: whitespace-tokenized text, one sentence per line (PTB, Multi30k `tok/`, also
gzip-compressed); CoNLL columns, one token per line and a blank line after each sentence
(CoNLL-2000: `word POS chunk`); NVDM bag-of-words `.feat` lines `label idx:count …` with 1-based
`idx`, and its `vocab.new` (`word count` per line). Every malformed line raises `DataFormatError`
with the file, the line number and what was expected: bytes that are not UTF-8, an `idx:count`
beyond int64, a word listed twice in `vocab.new`, and a file without a single sentence or
document (an empty split would otherwise be scored as a perfect-looking NLL 0 over 0 tokens).

#### References
Tjong Kim Sang & Buchholz (2000), "Introduction to the CoNLL-2000 Shared Task: Chunking".
Miao, Yu & Blunsom (2016), "Neural Variational Inference for Text Processing", ICML (the `.feat`
format of the NVDM code).
"""
from __future__ import annotations

import dataclasses
import gzip
import os
import re

import numpy as np

from data.errors import DataFormatError

_FEAT_LINE = re.compile(r"\d+(?:\s+\d+:\d+)*\s*")
_PAIR = re.compile(r"\d+:\d+")
_INT64_MAX = np.iinfo(np.int64).max


END_OF_FILE = "<end of file>"


def numbered_lines(path: str | os.PathLike):
    """`(number, line)` for each line of a UTF-8 text file (`.gz` decompressed), 1-based, the
    line without its line end.

    Raises:
      DataFormatError: at the first line that is not UTF-8 (naming the byte offset in it).
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(path, number, f"UTF-8 text (byte {err.start} of the line "
                                      f"is {raw[err.start:err.start + 1]!r})",
                                      raw.decode("utf-8", "replace").rstrip("\r\n")) from None
            yield number, line.rstrip("\r\n")


def read_text(path: str | os.PathLike) -> str:
    """The whole of a UTF-8 text file, line ends as they are (a character corpus).

    Raises:
      DataFormatError: naming the first line that is not UTF-8 (and the byte offset in it).
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        start = raw.rfind(b"\n", 0, err.start) + 1
        end = raw.find(b"\n", err.start)
        line = raw[start:end if end >= 0 else len(raw)]
        raise DataFormatError(path, raw.count(b"\n", 0, err.start) + 1,
                              f"UTF-8 text (byte {err.start - start} of the line is "
                              f"{raw[err.start:err.start + 1]!r})",
                              line.decode("utf-8", "replace").rstrip("\r")) from None


def require_content(path: str | os.PathLike, count: int, what: str) -> None:
    """Raises `DataFormatError` when a file yielded no `what` (count 0): an empty split."""
    if not count:
        raise DataFormatError(path, 1, f"at least one {what} (the file has none)", END_OF_FILE)


def text_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file (`.gz` decompressed), without their line ends; at least one."""
    lines = [line for _, line in numbered_lines(path)]
    require_content(path, len(lines), "line")
    return lines


def token_lines(path: str | os.PathLike) -> list[list[str]]:
    """Whitespace-separated tokens of each line (an empty line is an empty sentence)."""
    return [line.split() for line in text_lines(path)]


def conll_sentences(path: str | os.PathLike, columns: tuple[str, ...]) -> list[list[list[str]]]:
    """Sentences of a CoNLL file: per sentence, one token list per column.

    Args:
      path: one token per line with `len(columns)` space-separated fields, a blank line after
        each sentence (the last blank line may be missing).
      columns: the column names, for error messages (e.g. `("word", "POS", "chunk")`).

    Returns:
      `sentences[i][c]`: the tokens of column `c` in sentence `i`.
    """
    sentences, current = [], [[] for _ in columns]
    for number, line in numbered_lines(path):
        fields = line.split()
        if not fields:
            if current[0]:
                sentences.append(current)
                current = [[] for _ in columns]
            continue
        if len(fields) != len(columns):
            raise DataFormatError(path, number, f"{len(columns)} space-separated columns: "
                                  + " ".join(columns), line)
        for column, field in zip(current, fields):
            column.append(field)
    if current[0]:
        sentences.append(current)
    require_content(path, len(sentences), "sentence")
    return sentences


def vocab_words(path: str | os.PathLike) -> list[str]:
    """The words of an NVDM `vocab.new` file (first field of each `word count` line), each once."""
    first_line = {}
    for number, line in enumerate(text_lines(path), 1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataFormatError(path, number, "'word count' with an integer count", line)
        if fields[0] in first_line:
            raise DataFormatError(path, number, f"a word not listed before (line "
                                  f"{first_line[fields[0]]} has {fields[0]!r})", line)
        first_line[fields[0]] = number
    return list(first_line)


@dataclasses.dataclass(frozen=True)
class BagsOfWords:
    """D documents as sparse counts, N (document, word) pairs in all, stored flat.

    Attributes:
      labels: int64 [D], 0-based (the file's label minus one).
      index_values: int64 [N], 0-based word ids, document after document.
      counts: int64 [N], the count of each (document, word) pair.
      lengths: int64 [D], the number of pairs of each document.
    """
    labels: np.ndarray
    index_values: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def feat_documents(path: str | os.PathLike, vocab_size: int, num_labels: int) -> BagsOfWords:
    """Reads an NVDM `.feat` file: `label idx:count idx:count …` per document.

    `idx` is 1-based into `vocab.new` and becomes `idx - 1`; `label` in 1..`num_labels` becomes
    `label - 1`. Documents without tokens (ProdLDA files end with one) are skipped, as NVDM's reader
    does.
    """
    labels, values, counts, lengths = [], [], [], []
    for number, line in enumerate(text_lines(path), 1):
        if not _FEAT_LINE.fullmatch(line):
            _raise_feat_error(path, number, line)
        fields = line.split()
        numbers = " ".join(fields[1:]).replace(":", " ").split()
        too_large = next((1 + i // 2 for i, n in enumerate(numbers) if int(n) > _INT64_MAX), None)
        if too_large is not None:
            raise DataFormatError(path, number, f"idx:count with idx and count <= {_INT64_MAX}",
                                  fields[too_large])
        pairs = np.array(numbers, np.int64).reshape(-1, 2)
        label = int(fields[0])
        if not 1 <= label <= num_labels:
            raise DataFormatError(path, number, f"a label in 1..{num_labels}", fields[0])
        bad = np.flatnonzero((pairs[:, 0] < 1) | (pairs[:, 0] > vocab_size) | (pairs[:, 1] < 1))
        if bad.size:
            raise DataFormatError(path, number, f"idx:count with 1 <= idx <= {vocab_size} and "
                                  "count >= 1", fields[1 + bad[0]])
        if not len(pairs):
            continue
        labels.append(label - 1)
        values.append(pairs[:, 0] - 1)
        counts.append(pairs[:, 1])
        lengths.append(len(pairs))
    require_content(path, len(labels), "document with words")
    return BagsOfWords(np.array(labels, np.int64), _concat(values), _concat(counts),
                       np.array(lengths, np.int64))


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """`np.concatenate`, also of no parts (an empty int64 array)."""
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _raise_feat_error(path: str | os.PathLike, number: int, line: str) -> None:
    """Raises the `DataFormatError` for the first bad field of a `.feat` line."""
    fields = line.split()
    if not fields or not fields[0].isdigit():
        raise DataFormatError(path, number, "an integer label first", fields[0] if fields else line)
    bad = next((f for f in fields[1:] if not _PAIR.fullmatch(f)), line)
    raise DataFormatError(path, number, "idx:count with integer idx and count", bad)
