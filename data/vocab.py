"""A vocabulary: the bijection between tokens and integer ids, with four reserved ids.

With specials, ids 0..3 are `<pad>`, `<unk>`, `<bos>`, `<eos>`; the other tokens follow in order of
decreasing training count (ties in string order), so that `Vocabulary.build` is deterministic:

    id(w) = 4 + rank(w),  rank by (-count(w), w),  over {w : count(w) >= min_count} \\ specials,

truncated to `max_size` ids in all. A corpus that already contains `<unk>` or `<eos>` (PTB) reuses
the reserved ids, so PTB's 10,000 types (9,999 words of ptb.train.txt, `<unk>` among them, plus
`<eos>`) and `<pad>`, `<bos>` make 10,002 ids. Tag sets and bag-of-words vocabularies are built
with `specials=False`: their ids are exactly the tag or word positions (no reserved ids).

#### References
Mikolov et al. (2010), "Recurrent neural network based language model", Interspeech: the PTB
10k vocabulary with `<unk>` and `<eos>`.
"""
from __future__ import annotations

import collections
import itertools
import os
import re
from collections.abc import Iterable, Sequence

import tensorflow as tf

from data.errors import DataFormatError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)

# One token per line in files: backslash, newline and carriage return are escaped (characters
# of Tiny Shakespeare include "\n").
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {v[1]: k for k, v in _ESCAPES.items()}
_ESCAPED = re.compile(r"\\([\\nr])")
_ESCAPED_LINE = re.compile(r"(?:[^\\]|\\[\\nr])*")


class Vocabulary:
    """Tokens ↔ ids.

    Args:
      tokens: every token in id order; with `specials`, the first four must be `SPECIALS`.
      specials: whether ids 0..3 are `<pad>`, `<unk>`, `<bos>`, `<eos>`. Without them an unknown
        token cannot be encoded (KeyError) and `lookup_table` maps it to -1.

    Examples:
      >>> v = Vocabulary.build([["a", "b", "a"]])
      >>> v.tokens, v.encode(["a", "zzz"])
      (['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'b'], [4, 1])
    """

    def __init__(self, tokens: Sequence[str], specials: bool = True):
        tokens = list(tokens)
        if specials and tuple(tokens[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary with specials must start with {list(SPECIALS)}, "
                             f"got {tokens[:len(SPECIALS)]}")
        duplicates = sorted(t for t, c in collections.Counter(tokens).items() if c > 1)
        if duplicates:
            raise ValueError(f"duplicate tokens in vocabulary: {duplicates[:10]}")
        self._tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}
        self.specials = specials

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_count: int = 1,
              max_size: int | None = None, specials: bool = True) -> "Vocabulary":
        """The vocabulary of `token_lists`: tokens seen `min_count` times, at most `max_size` ids.

        Args:
          token_lists: sentences (or any iterables) of tokens.
          min_count: rarer tokens are left out (they encode to `<unk>`).
          max_size: the largest `len(vocabulary)`, reserved ids included; the most frequent
            tokens are kept.
          specials: reserve ids 0..3 (see the class).
        """
        head = list(SPECIALS) if specials else []
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < max(len(head), 1):
            raise ValueError(f"max_size must be >= {max(len(head), 1)}, got {max_size}")
        counts = collections.Counter(itertools.chain.from_iterable(token_lists))
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in head),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - len(head)]
        return cls(head + kept, specials)

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order."""
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens`; unknown tokens become `UNK_ID` (KeyError without specials)."""
        if self.specials:
            return [self._ids.get(t, UNK_ID) for t in tokens]
        try:
            return [self._ids[t] for t in tokens]
        except KeyError as e:
            raise KeyError(f"token {e.args[0]!r} is not in this vocabulary (no <unk> id: it "
                           "was built with specials=False)") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of `ids` (any iterable of ints, e.g. a numpy row)."""
        out = []
        for i in ids:
            if not 0 <= int(i) < len(self._tokens):
                raise IndexError(f"id {int(i)} is outside the vocabulary of size {len(self)}")
            out.append(self._tokens[int(i)])
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Writes one token per line (backslash, newline, CR escaped as `\\\\`, `\\n`, `\\r`)."""
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(self.to_text())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Reads a file written by `save`; it has specials iff its first lines are `SPECIALS`."""
        with open(path, "rb") as f:
            return cls.from_text(f.read(), path)

    def to_text(self) -> str:
        """The contents `save` writes."""
        return "".join("".join(_ESCAPES.get(c, c) for c in t) + "\n" for t in self._tokens)

    @classmethod
    def from_text(cls, text: bytes | str, path: str | os.PathLike = "<text>") -> "Vocabulary":
        """The vocabulary of `to_text`'s output; errors name `path` and the line.

        Raises:
          DataFormatError: a line that is not UTF-8, has a bad escape, or repeats a token.
        """
        tokens, first_line = [], {}
        raw_lines = text.split(b"\n" if isinstance(text, bytes) else "\n")
        if raw_lines and not raw_lines[-1]:
            raw_lines.pop()  # the last line's end
        for number, line in enumerate(raw_lines, 1):
            if isinstance(line, bytes):
                try:
                    line = line.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataFormatError(path, number, f"UTF-8 text (byte {err.start} of the "
                                          "line is not)", line.decode("utf-8", "replace")) from None
            if not _ESCAPED_LINE.fullmatch(line):
                raise DataFormatError(path, number,
                                      "a token with escapes \\\\, \\n or \\r only", line)
            token = _ESCAPED.sub(lambda m: _UNESCAPES[m.group(1)], line)
            if token in first_line:
                raise DataFormatError(path, number, f"a token not listed before (line "
                                      f"{first_line[token]} has {token!r})", line)
            first_line[token] = number
            tokens.append(token)
        return cls(tokens, specials=tuple(tokens[:len(SPECIALS)]) == SPECIALS)

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """An in-graph string → int64 table (default `UNK_ID`, or -1 without specials).

        The table is a trackable resource: attach it to a `tf.Module` (or Keras layer) that is
        saved, and it is restored with the SavedModel.
        """
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.constant(self._tokens, tf.string), tf.range(len(self._tokens), dtype=tf.int64))
        return tf.lookup.StaticHashTable(initializer, default_value=UNK_ID if self.specials else -1)

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, specials={self.specials})"
