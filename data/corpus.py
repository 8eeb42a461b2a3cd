"""`Corpus`: one parsed corpus, its vocabularies and the batch forms it offers.

A corpus is a set of named splits, each a collection of token sequences (or documents) over a
vocabulary V; `dataset(split, form, batch_size, …)` turns a split into a `tf.data.Dataset` of dict
batches of one form (see `data.forms`). `num_tokens(split)` is the count a per-token metric divides
by, as in the data README (PTB: words plus one `<eos>` per line, the standard perplexity
denominator; 20news: the sum of counts; CoNLL-2000, synthetic: words/symbols; Multi30k: target-side
tokens; Tiny Shakespeare: characters); `num_examples(split)` counts sentences, documents or sentence
pairs (1 for a Tiny Shakespeare split, a single text).

#### References
Kim, Wiseman & Rush (2018), "A Tutorial on Deep Latent Variable Models of Natural Language",
arXiv:1812.06834 (the corpora of its case studies).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from data.forms import FormBuilder
from data.pipeline import Batching
from data.vocab import Vocabulary


class Corpus:
    """A parsed corpus.

    Args:
      name: the registry name (`"ptb"` …).
      splits: normalised split names (`train`, `valid`, `test`, …).
      vocab: the vocabulary of the token ids in batches (Multi30k: the target side's).
      builders: per form name, its builder (`data.forms`).
      info: facts a model is built from: `vocab_size` and e.g. `num_tags`, `num_labels`.
      token_counts, example_counts: per split (see the module docstring).
      source_vocab, target_vocab: Multi30k's vocabularies (of the chosen `direction`).
      pos_vocab, chunk_vocab: CoNLL-2000's tag sets (no reserved ids).
      true_params: synthetic_hmm's generating parameters.
      references: `(split, raw) -> list[str]`, the reference sentences (Multi30k).
      reference_sets: `split -> [(source text, [reference, …])]`, each distinct source of a
        data-to-text corpus with all its references (E2E), in the split's order.
      form_splits: per form offered only on some splits, those splits (E2E's test split has
        record sets but no aligned sentence); other forms are offered on every split.
      detokenize: `text -> text`, a model's output (tokens joined by spaces) written in the
        conventions of the raw references (E2E: `data.e2e.detokenize`); None: unchanged.

    Examples:
      >>> import data
      >>> corpus = data.load("ptb")                  # from the data root (TFLV_DATA_DIR)
      >>> batch = next(iter(corpus.dataset("train", "stream", 20, seq_len=35)))
      >>> batch["inputs"].shape
      TensorShape([20, 35])
    """

    def __init__(self, name: str, splits: tuple[str, ...], vocab: Vocabulary,
                 builders: Mapping[str, FormBuilder], info: Mapping[str, Any],
                 token_counts: Mapping[str, int], example_counts: Mapping[str, int], *,
                 source_vocab: Vocabulary | None = None, target_vocab: Vocabulary | None = None,
                 pos_vocab: Vocabulary | None = None, chunk_vocab: Vocabulary | None = None,
                 true_params: Mapping[str, np.ndarray] | None = None,
                 references: Callable[[str, bool], list[str]] | None = None,
                 reference_sets: Callable[[str], list[tuple[str, list[str]]]] | None = None,
                 form_splits: Mapping[str, tuple[str, ...]] | None = None,
                 detokenize: Callable[[str], str] | None = None):
        self.name = name
        self.splits = tuple(splits)
        self.vocab = vocab
        self.forms = tuple(builders)
        self.info = dict(info)
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.pos_vocab, self.chunk_vocab = pos_vocab, chunk_vocab
        self.true_params = true_params
        self._builders = dict(builders)
        self._token_counts, self._example_counts = dict(token_counts), dict(example_counts)
        self._references = references
        self._reference_sets = reference_sets
        self._form_splits = dict(form_splits or {})
        self._detokenize = detokenize
        empty = [split for split in self.splits
                 if not self._example_counts.get(split) or not self._token_counts.get(split)]
        if empty:  # a metric over zero tokens would look perfect (NLL 0, perplexity 1)
            raise ValueError(f"corpus {name!r}: split(s) {', '.join(empty)} hold no tokens; "
                             "check the corpus files under the data root")

    def dataset(self, split: str, form: str, batch_size: int, shuffle: bool = False,
                seed: int = 0, repeat: bool = False, **form_options) -> tf.data.Dataset:
        """Dict batches of `form` from `split`.

        Args:
          split: one of `self.splits`.
          form: one of `self.forms`.
          batch_size: examples (or stream rows) per batch; the last batch may be smaller (a
            stream's last window is padded and masked instead).
          shuffle: shuffle examples (stream: windows) with `seed`, differently each epoch.
          seed: the shuffling seed; the same seed gives the same batches.
          repeat: repeat endlessly (for step-based training).
          **form_options: the form's options, e.g. `seq_len`, `max_length`, `pad_to`,
            `bucket_boundaries`, `side` (see `data.forms`).
        """
        self._check_split(split)
        if form not in self._builders:
            raise ValueError(f"corpus {self.name!r} has no form {form!r}; its forms are "
                             f"{', '.join(self.forms)}")
        return self._builders[form](split, Batching(batch_size, shuffle, seed, repeat),
                                    **form_options)

    def num_tokens(self, split: str) -> int:
        """Tokens of `split` (see the module docstring for what counts as a token)."""
        self._check_split(split)
        return self._token_counts[split]

    def num_examples(self, split: str) -> int:
        """Sentences, documents or sentence pairs of `split`."""
        self._check_split(split)
        return self._example_counts[split]

    def references(self, split: str, raw: bool = False) -> list[str]:
        """Reference sentences of `split` for BLEU: tokenized lines, or with `raw` the raw text."""
        self._check_split(split)
        if self._references is None:
            raise ValueError(f"corpus {self.name!r} has no reference translations")
        return self._references(split, raw)

    def detokenize(self, text: str) -> str:
        """A model's output text (tokens joined by spaces) in the references' conventions (the
        corpus' detokeniser, E2E's `data.e2e.detokenize`; else unchanged)."""
        return self._detokenize(text) if self._detokenize is not None else text

    def offers(self, split: str, form: str) -> bool:
        """Whether `dataset(split, form, …)` has batches (the form exists on that split)."""
        return form in self._builders and split in self._form_splits.get(form, self.splits)

    @property
    def has_reference_sets(self) -> bool:
        return self._reference_sets is not None

    def reference_sets(self, split: str) -> list[tuple[str, list[str]]]:
        """Each distinct source text of `split` with all its references (data-to-text)."""
        self._check_split(split)
        if self._reference_sets is None:
            raise ValueError(f"corpus {self.name!r} has no reference sets")
        return self._reference_sets(split)

    def reference_set_batches(self, split: str, batch_size: int, limit: int = 0):
        """`reference_sets(split)` (the first `limit`; 0: all) in batches of `batch_size`: yields
        (source ids int32 [b, S] of each source text, 0-padded; its (text, references) pairs)."""
        pairs = self.reference_sets(split)
        pairs = pairs[:limit] if limit else pairs
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            rows = [self.source_vocab.encode(text.split()) for text, _ in chunk]
            width = max(len(r) for r in rows)
            yield np.array([list(r) + [0] * (width - len(r)) for r in rows], np.int32), chunk

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"corpus {self.name!r} has no split {split!r}; its splits are "
                             f"{', '.join(self.splits)}")

    def __repr__(self) -> str:
        return (f"Corpus({self.name!r}, splits={self.splits}, forms={self.forms}, "
                f"vocab_size={len(self.vocab)})")
