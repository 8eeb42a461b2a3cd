"""The text pipeline of the generic corpora: reading lines safely, normalising, tokenising.

A line of a user's file becomes tokens in three steps, each an option of `TextPipeline`:

    normalise   Unicode normal form (`unicode_form`: None, "NFC", "NFKC", …), then lower-casing
                (`lowercase`)
    tokenise    `whitespace`:  the maximal runs of non-whitespace characters (str.split)
                `punctuation`: words \\w+ and every other non-space character on its own,
                               "Don't stop." → Don ' t stop .
                `characters`:  every character, spaces included ("a b" → a, " ", b)

`TextPipeline.options()` is a plain dict of these settings, recorded by every generic corpus
as `corpus.info["text_pipeline"]` so that a run can save it and serve text the same way.

`read_lines` decodes a file line by line as strict UTF-8: a line ending `\\r\\n` (CRLF) is read
as `\\n`, a byte-order mark at the start is dropped, and bytes that are not UTF-8 raise
`DataFormatError` naming the file and the line.

#### References
Unicode Standard Annex #15, "Unicode Normalization Forms" (NFC, NFKC).
"""
from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections.abc import Iterator

from data.errors import DataFormatError

TOKENIZERS = ("whitespace", "punctuation", "characters")
UNICODE_FORMS = ("NFC", "NFD", "NFKC", "NFKD")
_WORD_OR_SYMBOL = re.compile(r"\w+|[^\w\s]")
_BOM = "\ufeff"


@dataclasses.dataclass(frozen=True)
class TextPipeline:
    """How a line of text becomes tokens (see the module docstring).

    Examples:
      >>> TextPipeline("punctuation", lowercase=True).tokens("Don't stop.")
      ['don', "'", 't', 'stop', '.']
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

    def normalise(self, line: str) -> str:
        """The line in `unicode_form`, lower-cased if `lowercase`."""
        if self.unicode_form:
            line = unicodedata.normalize(self.unicode_form, line)
        return line.lower() if self.lowercase else line

    def tokens(self, line: str) -> list[str]:
        """The tokens of one normalised line (none for a blank line, except `characters`)."""
        line = self.normalise(line)
        if self.tokenizer == "whitespace":
            return line.split()
        if self.tokenizer == "punctuation":
            return _WORD_OR_SYMBOL.findall(line)
        return list(line)

    def options(self) -> dict:
        """The settings as a plain, JSON-serialisable dict."""
        return dataclasses.asdict(self)


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
