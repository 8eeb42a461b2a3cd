"""The two errors of the data package: a malformed corpus file, and a missing corpus folder.

`DataFormatError` points at one line of one file (`train.feat:12: expected idx:count with integer
idx and count, got '12:x'`), so a bad file is fixed without reading the parser.
`CorpusNotFoundError` names the folder and files it looked for and where to get them.

#### References
No mathematics here; the message formats follow the `file:line:` convention of compilers.
"""
from __future__ import annotations

import os


class DataFormatError(ValueError):
    """A line of a corpus file that does not have the expected format.

    Args:
      file: the file's path.
      line: the 1-based line number.
      what: what the parser expected there (e.g. `"3 space-separated columns: word POS chunk"`).
      text: what it found (the offending line or field).
    """

    def __init__(self, file: str | os.PathLike, line: int, what: str, text: str):
        self.file, self.line, self.what, self.text = os.fspath(file), line, what, text
        super().__init__(f"{self.file}:{line}: expected {what}, got {text!r}")


class CorpusNotFoundError(FileNotFoundError):
    """A corpus folder, or a file in it, that is not where the data root says it should be."""
