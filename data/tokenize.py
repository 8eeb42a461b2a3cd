"""The text pipeline of the generic corpora: reading lines safely, normalising, tokenising.

A line of a user's file becomes tokens in three steps, each an option of `TextPipeline`:

    normalise   Unicode normal form (`unicode_form`: None, "NFC", "NFKC", …), then lower-casing
                (`lowercase`: Unicode's full lower-case mapping, "ΟΔΟΣ" → "οδος")
    tokenise    `whitespace`:  the maximal runs of non-whitespace characters (str.split)
                `punctuation`: words [\\p{L}\\p{N}_]+ and every other non-space character on
                               its own, "Don't stop." → Don ' t stop .
                `characters`:  every character, spaces included ("a b" → a, " ", b)

Lower-casing and tokenising are ONE implementation in TensorFlow ops, `TextPipeline.tokenize`
(`tf.strings.lower`, `tf.strings.regex_replace`, `tf.strings.split`, `tf.strings.unicode_split`):
the corpora run it on the lines of the files (`text:` and `tfds:` in their scan and in tf.data,
`data.text_stream`; `parallel:` and `tagged:` through `tokens_of`, in batches of lines) and every
exported SavedModel signature runs it in its graph (`tflv.export.TextBatcher`), so a served text gets the
ids a training line of the same text got. Whitespace is Python's (`str.isspace`: the characters
`\\t\\n\\v\\f\\r`, `\\x1c`–`\\x1f`, `\\x85` and Unicode's separators `\\p{Z}`) and a word
character is Python's `\\w`; tests/data/test_text_corpus.py checks both, and lower-casing, against
Python on every code point below U+2C00. Unicode normalisation has no TensorFlow op: the corpora
apply it in Python (`unicodedata.normalize`) before `tokenize`, and a SavedModel of a run with a
`unicode_form` expects its clients to send text in that form (the export says so).

`TextPipeline.options()` is a plain dict of these settings, recorded by every generic corpus
as `corpus.info["text_pipeline"]`; the run record keeps it (the dataset options) and the export
builds its signatures' pipeline from it (`TextPipeline.of(corpus.info)`).

`read_lines` decodes a file line by line as strict UTF-8: a line ending `\\r\\n` (CRLF) is read
as `\\n`, a byte-order mark at the start is dropped, and bytes that are not UTF-8 raise
`DataFormatError` naming the file and the line.

#### References
Unicode Standard Annex #15, "Unicode Normalization Forms" (NFC, NFKC); Unicode Standard Annex #44
(the general categories L, N and Z of the character classes).
"""
from __future__ import annotations

import dataclasses
import os
import unicodedata
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence

import tensorflow as tf

from data.errors import DataFormatError

TOKENIZERS = ("whitespace", "punctuation", "characters")
UNICODE_FORMS = ("NFC", "NFD", "NFKC", "NFKD")
# RE2 character classes (RE2's own \\s and \\w are ASCII-only): Python's str.isspace, re's \\w.
SPACE = r"\t\n\v\f\r\x1c-\x1f\x85\p{Z}"
WORD = r"\p{L}\p{N}_"
_BOM = "\ufeff"
_BATCH = 4096  # lines per call of `tokenize` in `tokens_of`


@dataclasses.dataclass(frozen=True)
class TextPipeline:
    """How a line of text becomes tokens (see the module docstring).

    Examples:
      >>> TextPipeline("punctuation", lowercase=True).tokens("Don't stop.")
      ['don', "'", 't', 'stop', '.']
      >>> TextPipeline(lowercase=True).tokenize(tf.constant(["A b", ""])).to_list()
      [[b'a', b'b'], []]
    """
    tokenizer: str = "whitespace"
    lowercase: bool = False
    unicode_form: str | None = None

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got "
                             f"{self.tokenizer!r}")
        if self.unicode_form is not None and self.unicode_form not in UNICODE_FORMS:
            raise ValueError(f"unicode_form must be None or one of {', '.join(UNICODE_FORMS)}, "
                             f"got {self.unicode_form!r}")

    @classmethod
    def of(cls, info: Mapping) -> "TextPipeline":
        """The pipeline a corpus records in `info["text_pipeline"]` (whitespace tokens, as written,
        for a corpus that records none)."""
        return cls(**info.get("text_pipeline", {}))

    def tokenize(self, lines: tf.Tensor) -> tf.RaggedTensor:
        """string [N] → string ragged [N, None]: each line lower-cased (if `lowercase`) and split
        into tokens, in TensorFlow ops (usable in tf.data and in a SavedModel's graph).

        `unicode_form` is not applied here (`tokens_of` applies it in Python first)."""
        lines = tf.convert_to_tensor(lines, tf.string)
        if self.lowercase:
            lines = tf.strings.lower(lines, encoding="utf-8")
        if self.tokenizer == "characters":
            return tf.strings.unicode_split(lines, "UTF-8")
        if self.tokenizer == "punctuation":
            lines = tf.strings.regex_replace(lines, f"([^{WORD}{SPACE}])", r" \1 ")
        # Every run of whitespace becomes one space, which `split` (ASCII whitespace) splits at.
        return tf.strings.split(tf.strings.regex_replace(lines, f"[{SPACE}]+", " "))

    def normalise_unicode(self, line: str) -> str:
        """The line in `unicode_form` (unchanged without one)."""
        return unicodedata.normalize(self.unicode_form, line) if self.unicode_form else line

    def normalise(self, lines: Sequence[str]) -> list[str]:
        """Each line in `unicode_form`, lower-cased if `lowercase` (by `tokenize`'s
        `tf.strings.lower`), not tokenised: the words of a tagged corpus' columns."""
        lines = [self.normalise_unicode(line) for line in lines]
        if not self.lowercase or not lines:
            return lines
        lowered = tf.strings.lower(tf.constant(lines, tf.string), encoding="utf-8")
        return [line.decode("utf-8") for line in lowered.numpy().tolist()]

    def tokens_of(self, lines: Sequence[str]) -> list[list[str]]:
        """The tokens of each line: `normalise_unicode`, then `tokenize` (in batches of lines)."""
        out = []
        for start in range(0, len(lines), _BATCH):
            chunk = [self.normalise_unicode(line) for line in lines[start:start + _BATCH]]
            ragged = self.tokenize(tf.constant(chunk, tf.string))
            values = [t.decode("utf-8") for t in ragged.flat_values.numpy().tolist()]
            bounds = ragged.row_splits.numpy().tolist()
            out.extend(values[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
        return out

    def tokenized(self, numbered: Iterable[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
        """(number, tokens) of each (number, line) of `numbered`, read and tokenised in batches of
        lines (a file of any size is never held whole)."""
        for chunk in batches(numbered, _BATCH):
            yield from zip((n for n, _ in chunk), self.tokens_of([line for _, line in chunk]))

    def tokens(self, line: str) -> list[str]:
        """The tokens of one line (none for a blank line, except `characters`)."""
        return self.tokens_of([line])[0]

    def options(self) -> dict:
        """The settings as a plain, JSON-serialisable dict."""
        return dataclasses.asdict(self)


def batches(items: Iterable, size: int) -> Iterator[list]:
    """`items` in lists of `size` (the last one shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each line of a UTF-8 file, without its line end.

    `\\r\\n` and `\\n` both end a line; a leading byte-order mark is dropped.

    Raises:
      DataFormatError: at the first line that is not valid UTF-8 (its bytes are quoted).
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad = raw[max(e.start - 10, 0):e.end + 10]
                raise DataFormatError(path, number, f"UTF-8 text (invalid byte at column "
                                      f"{e.start + 1})",
                                      bad.decode("utf-8", "backslashreplace")) from None
            if number == 1 and line.startswith(_BOM):
                line = line[1:]
            yield number, line
