"""E2E NLG (restaurant data-to-text) with Wiseman et al.'s preprocessing: records, sentences, spans.

An example pairs a record set r = {(field_j, value_j)} (3–8 records, fields among `FIELDS`) with
a tokenised description y_1..y_n. Files (in `e2e/`, see the data README):

    src_{train,valid,test}.txt   __start_name__ The Vaults __end_name__ __start_eatType__ pub …
    {train,valid}.txt            The Vaults pub near … <eos>|||0,2,0 2,3,1 4,6,6 …

Each `start,end,label` triple marks the token span y[start:end] (end exclusive) that copies a
record value; `SPAN_LABELS[label]` names it. The label scheme is Wiseman et al.'s: matching span
text to the line's record values on these files gives 0–6 = name, eatType, food, priceRange,
customerrating, area, near (familyFriendly has no label), 7 = punctuation, 8 = the final
`<eos>`. Neural templates (Wiseman, Shieber & Rush 2018) may use them as weak supervision of
segment states, or ignore them.

Splits: `train` (42,061 pairs), `valid` (4,672 pairs, 547 distinct record sets) and `test`
(630 record sets, no aligned sentence); `reference_sets(data_dir)` gives, per line of
`src_test.txt`, all human references of its MR from `testset_w_refs.csv` (file order of the
distinct MRs, checked field by field against `src_test.txt`).

Forms: `parallel` (train, valid): source = the record-set tokens as written in `src_*.txt`
(field markers included), target = the sentence (its `<eos>` is the form's), and
`target_span_lengths` int [B, T] aligned with `target_targets`: m at the first token of an
annotated span of m tokens, 0 elsewhere (the spans as segmentation constraints); `sentences` (train,
valid); `records` (all splits): the record-set tokens only (`source`, `source_lengths`,
`source_mask`). `examples(data_dir, split)` gives the parsed `Example`s (records, tokens, spans).
Vocabularies (built on train, `min_count` option): `source_vocab` over record-set tokens,
`target_vocab` (= `vocab`) over sentence words. `Corpus.reference_sets(split)`: each distinct
record set (as `src_*.txt` text) with all its references — valid: its aligned sentences,
`detokenize`d (`<eos>` dropped; they then equal devset.csv's raw references up to spacing);
test: the raw human references of `testset_w_refs.csv`. `Corpus.detokenize` (`detokenize`)
writes a model's output the same way before it is scored. The
`parallel` and `sentences` forms exist on train and valid only (`Corpus.offers`).
`num_tokens(split)`: sentence tokens with their
`<eos>` (train, valid) or record-set tokens (test), the counts of the data README.

Bad files raise `DataFormatError` naming file:line: a record without its `__end_FIELD__`, a
token outside any record, an unknown or repeated field, an empty value, a sentence line without
`|||`, a malformed triple, a span outside the sentence, overlapping spans or an unknown label.

#### References
Novikova, Dušek & Rieser (2017), "The E2E Dataset: New Challenges for End-to-End Generation",
SIGDIAL. Wiseman, Shieber & Rush (2018), "Learning Neural Templates for Text Generation", EMNLP
(the span annotation, `harvardnlp/neural-template-gen` `data/e2e_aligned.tar.gz`).
"""
from __future__ import annotations

import csv
import functools
import os
import re
from typing import NamedTuple

from data import forms, readers
from data.corpus import Corpus
from data.errors import DataFormatError
from data.paths import corpus_dir
from data.pipeline import Sequences
from data.vocab import EOS, Vocabulary

FOLDER = "e2e"
FIELDS = ("name", "eatType", "food", "priceRange", "customerrating", "area", "familyFriendly",
          "near")
SPAN_LABELS = ("name", "eatType", "food", "priceRange", "customerrating", "area", "near",
               "punctuation", EOS)
FILES = {"train": ("src_train.txt", "train.txt"), "valid": ("src_valid.txt", "valid.txt"),
         "test": ("src_test.txt", None)}
TEST_REFERENCES = "testset_w_refs.csv"
SOURCE = ("https://github.com/harvardnlp/neural-template-gen (data/e2e_aligned.tar.gz) and "
          "https://github.com/tuetschek/e2e-dataset (testset_w_refs.csv)")

_START, _END = re.compile(r"__start_(\w+)__"), re.compile(r"__end_(\w+)__")
_SPAN = re.compile(r"(\d+),(\d+),(\d+)")
_MR_PART = re.compile(r"\s*([A-Za-z ]+?)\[([^\]]*)\]\s*")
# Wiseman et al.'s tokenisation undone: (pattern, replacement), applied in order
_DETOKENIZE = ((re.compile(r"(?<=\w) - (?=\w)"), "-"),  # family - friendly, 20 - 25
               (re.compile(r"£ (?=\d)"), "£"),  # £ 20
               (re.compile(r" (?='(?:s|re|ll|ve|d|m)\b)"), ""),  # it 's
               (re.compile(r"n 't\b"), "n't"),  # isn 't
               (re.compile(r" (?=[.,!?;:](?:\s|$))"), ""))  # centre , Alimentum .


class Record(NamedTuple):
    """One record: its field and its value's tokens."""

    field: str
    value: tuple[str, ...]


class Span(NamedTuple):
    """Tokens [start, end) of a sentence copy a record value (label: `SPAN_LABELS[label]`)."""

    start: int
    end: int
    label: int


class Example(NamedTuple):
    """A record set with its sentence (tokens end with `<eos>`) and spans; None for test."""

    records: tuple[Record, ...]
    tokens: tuple[str, ...] | None
    spans: tuple[Span, ...] | None


def parse_records(line: str, path: str, number: int) -> tuple[Record, ...]:
    """The records of one `src_*.txt` line (module docstring); `path:number` for errors."""
    tokens, records, i = line.split(), [], 0
    while i < len(tokens):
        opened = _START.fullmatch(tokens[i])
        if not opened:
            raise DataFormatError(path, number, f"a record `__start_FIELD__ value __end_FIELD__` "
                                  f"at token {i + 1}, not {tokens[i]!r}", line)
        field = opened.group(1)
        if field not in FIELDS:
            raise DataFormatError(path, number, f"a field among {', '.join(FIELDS)} at token "
                                  f"{i + 1}, not {field!r}", line)
        if any(r.field == field for r in records):
            raise DataFormatError(path, number, f"each field once per record set, not "
                                  f"{field!r} again at token {i + 1}", line)
        j = i + 1
        while j < len(tokens) and not (_END.fullmatch(tokens[j]) or _START.fullmatch(tokens[j])):
            j += 1
        if j == len(tokens) or tokens[j] != f"__end_{field}__":
            found = "the end of the line" if j == len(tokens) else f"{tokens[j]!r}"
            raise DataFormatError(path, number, f"`__end_{field}__` closing the record opened at "
                                  f"token {i + 1} before {found}", line)
        if j == i + 1:
            raise DataFormatError(path, number, f"a value between `__start_{field}__` and "
                                  f"`__end_{field}__` (token {i + 1})", line)
        records.append(Record(field, tuple(tokens[i + 1:j])))
        i = j + 1
    if not records:
        raise DataFormatError(path, number, "at least one record", line)
    return tuple(records)


def parse_sentence(line: str, path: str, number: int) -> tuple[tuple[str, ...], tuple[Span, ...]]:
    """The tokens and spans of one `{train,valid}.txt` line; `path:number` for errors."""
    if line.count("|||") != 1:
        raise DataFormatError(path, number, "the sentence, `|||` once, then start,end,label "
                              "triples", line)
    text, annotation = line.split("|||")
    tokens, spans = tuple(text.split()), []
    for triple in annotation.split():
        match = _SPAN.fullmatch(triple)
        if not match:
            raise DataFormatError(path, number, f"a span start,end,label of integers, not "
                                  f"{triple!r}", line)
        span = Span(*map(int, match.groups()))
        if not 0 <= span.start < span.end <= len(tokens):
            raise DataFormatError(path, number, f"a span inside the sentence (0 <= start < end "
                                  f"<= {len(tokens)}, its token count), not {triple!r}", line)
        if span.label >= len(SPAN_LABELS):
            raise DataFormatError(path, number, f"a span label below {len(SPAN_LABELS)}, not "
                                  f"{triple!r}", line)
        if any(span.start < other.end and other.start < span.end for other in spans):
            raise DataFormatError(path, number, f"spans that do not overlap, not {triple!r} "
                                  f"over an earlier span", line)
        spans.append(span)
    if not tokens or tokens[-1] != EOS:
        raise DataFormatError(path, number, f"a sentence ending in {EOS}", line)
    return tokens, tuple(spans)


@functools.lru_cache(maxsize=None)
def read_split(folder: str, split: str) -> tuple[Example, ...]:
    """The examples of one split (record and sentence files aligned line by line)."""
    source_file, sentence_file = FILES[split]
    source_path = os.path.join(folder, source_file)
    record_sets = [parse_records(line, source_path, number)
                   for number, line in enumerate(readers.text_lines(source_path), 1)]
    if sentence_file is None:
        return tuple(Example(r, None, None) for r in record_sets)
    sentence_path = os.path.join(folder, sentence_file)
    lines = readers.text_lines(sentence_path)
    if len(lines) != len(record_sets):
        short, n = ((sentence_path, len(lines)) if len(lines) < len(record_sets)
                    else (source_path, len(record_sets)))
        raise DataFormatError(short, n + 1, f"{max(len(lines), len(record_sets))} lines, "
                              f"aligned with {source_file} and {sentence_file}", "<end of file>")
    return tuple(Example(r, *parse_sentence(line, sentence_path, number))
                 for number, (r, line) in enumerate(zip(record_sets, lines), 1))


def detokenize(text: str) -> str:
    """Text in Wiseman et al.'s tokenisation (tokens joined by spaces) written as the raw E2E
    references write it: `family - friendly` → `family-friendly`, `£ 20 - 25` → `£20-25`,
    `it 's` → `it's`, `isn 't` → `isn't`, no space before `.`, `,`, `!`, `?`, `;`, `:`. The
    challenge's tokenisers (13a, PTB) keep `family-friendly`, `£20` and `it's` (13a) whole, so
    a tokenised hypothesis would miss those n-grams of the raw references.

    >>> detokenize("Aromi is a family - friendly pub , near £ 20 - 25 . It 's nice")
    "Aromi is a family-friendly pub, near £20-25. It's nice"
    """
    for pattern, replacement in _DETOKENIZE:
        text = pattern.sub(replacement, text)
    return text


def source_tokens(records: tuple[Record, ...]) -> list[str]:
    """A record set written as in `src_*.txt`: `__start_F__ value __end_F__` per record."""
    return [t for r in records for t in (f"__start_{r.field}__", *r.value, f"__end_{r.field}__")]


def _folder(data_dir: str, extra: tuple[str, ...] = ()) -> str:
    files = [f for pair in FILES.values() for f in pair if f] + list(extra)
    return corpus_dir(data_dir, FOLDER, files, SOURCE)


def examples(data_dir: str, split: str) -> tuple[Example, ...]:
    """The parsed examples of `split` ("train", "valid" or "test")."""
    if split not in FILES:
        raise ValueError(f"e2e has no split {split!r}; its splits are {', '.join(FILES)}")
    return read_split(_folder(data_dir), split)


def parse_mr(mr: str, path: str, number: int) -> tuple[Record, ...]:
    """An official MR `name[The Vaults], eatType[pub], …` as records (values split on spaces;
    field names without their spaces: `customer rating` is `customerrating`)."""
    parts = mr.split("],")
    records = []
    for k, part in enumerate(parts):
        match = _MR_PART.fullmatch(part + ("]" if k < len(parts) - 1 else ""))
        field = match.group(1).replace(" ", "") if match else None  # "customer rating"
        if field not in FIELDS:
            raise DataFormatError(path, number, "an MR `field[value], …` with fields among "
                                  f"{', '.join(FIELDS)}", mr)
        records.append(Record(field, tuple(match.group(2).split())))
    return tuple(records)


def reference_sets(data_dir: str) -> list[list[str]]:
    """Per line of `src_test.txt`, the raw human references of its MR (`testset_w_refs.csv`).

    Line i of `src_test.txt` is the i-th distinct MR of the CSV in file order; each pair is
    checked field by field (values compared without spaces: `src_test.txt` splits `£30` into
    `£ 30`). Raises `DataFormatError` at the CSV row (or `src_test.txt` line) that disagrees.
    """
    folder = _folder(data_dir, (TEST_REFERENCES,))
    path = os.path.join(folder, TEST_REFERENCES)
    order, refs, first_row = [], {}, {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["mr", "ref"]:
            raise DataFormatError(path, 1, "the header mr,ref", ",".join(header or []))
        for row in reader:
            if len(row) != 2:
                raise DataFormatError(path, reader.line_num, "two columns mr,ref", ",".join(row))
            if row[0] not in refs:
                order.append(row[0])
                refs[row[0]] = []
                first_row[row[0]] = reader.line_num
            refs[row[0]].append(row[1])
    test = read_split(folder, "test")
    source_path = os.path.join(folder, FILES["test"][0])
    if len(order) != len(test):
        raise DataFormatError(path, first_row[order[-1]] if order else 1,
                              f"{len(test)} distinct MRs, one per line of {FILES['test'][0]}",
                              f"{len(order)} distinct MRs")
    squeeze = lambda records: sorted((r.field, "".join(r.value)) for r in records)
    for number, (mr, example) in enumerate(zip(order, test), 1):
        if squeeze(parse_mr(mr, path, first_row[mr])) != squeeze(example.records):
            raise DataFormatError(source_path, number, f"the records of MR {mr!r} (row "
                                  f"{first_row[mr]} of {TEST_REFERENCES})",
                                  " ".join(source_tokens(example.records)))
    return [refs[mr] for mr in order]


def load(data_dir: str, min_count: int = 1) -> Corpus:
    """E2E under `data_dir/e2e/` (module docstring)."""
    folder = _folder(data_dir)
    vocabs, source, target, span_lengths = _parse(folder, min_count)
    paired = {split: s for split, s in target.items()}

    def only_paired(builder):
        def build(split, batching, **options):
            if split not in paired:
                raise ValueError(f"e2e split {split!r} has record sets only (no aligned "
                                 f"sentence): use the `records` form, and "
                                 f"data.e2e.reference_sets for its references")
            return builder(split, batching, **options)
        return build

    def records_form(split, batching, **options):
        return forms.tokens(source)(split, batching, **options).map(
            lambda b: {"source": b["tokens"], "source_lengths": b["lengths"],
                       "source_mask": b["mask"]})

    def references(split: str, raw: bool) -> list[str]:
        if split not in paired:
            raise ValueError("the e2e test split has several references per record set: use "
                             "data.e2e.reference_sets(data_dir)")
        return [" ".join(e.tokens[:-1]) for e in read_split(folder, split)]

    def grouped(split: str) -> list[tuple[str, list[str]]]:
        if split == "test":
            refs = reference_sets(data_dir)
            return [(" ".join(source_tokens(e.records)), r)
                    for e, r in zip(read_split(folder, split), refs)]
        by_source: dict[str, list[str]] = {}
        for e in read_split(folder, split):
            by_source.setdefault(" ".join(source_tokens(e.records)), []).append(
                detokenize(" ".join(e.tokens[:-1])))
        return list(by_source.items())

    return Corpus(
        "e2e", tuple(FILES), vocabs["target"],
        {"parallel": only_paired(forms.parallel(source, target,
                                                {"target_span_lengths": span_lengths})),
         "sentences": only_paired(forms.sentences(target)), "records": records_form},
        {"vocab_size": len(vocabs["target"]), "source_vocab_size": len(vocabs["source"]),
         "target_vocab_size": len(vocabs["target"]), "num_fields": len(FIELDS),
         "num_span_labels": len(SPAN_LABELS)},
        {split: int(target[split].lengths.sum() + len(target[split])) if split in target
         else int(source[split].lengths.sum()) for split in FILES},
        {split: len(s) for split, s in source.items()},
        source_vocab=vocabs["source"], target_vocab=vocabs["target"], references=references,
        reference_sets=grouped,
        form_splits={form: tuple(paired) for form in ("parallel", "sentences")},
        detokenize=detokenize)


@functools.lru_cache(maxsize=None)
def _parse(folder: str, min_count: int):
    """Vocabularies (built on train), the record-set and sentence ids of each split, and per
    sentence token (`<eos>` included) the length of the span starting there (0: none)."""
    splits = {split: read_split(folder, split) for split in FILES}
    src = {split: [source_tokens(e.records) for e in ex] for split, ex in splits.items()}
    tgt = {split: [list(e.tokens[:-1]) for e in ex] for split, ex in splits.items()
           if ex[0].tokens is not None}
    vocabs = {"source": Vocabulary.build(src["train"], min_count),
              "target": Vocabulary.build(tgt["train"], min_count)}
    source = {split: Sequences.from_rows(vocabs["source"].encode(t) for t in lines)
              for split, lines in src.items()}
    target = {split: Sequences.from_rows(vocabs["target"].encode(t) for t in lines)
              for split, lines in tgt.items()}
    span_lengths = {split: Sequences.from_rows(_span_lengths(e) for e in ex)
                    for split, ex in splits.items() if split in target}
    return vocabs, source, target, span_lengths


def _span_lengths(example: Example) -> list[int]:
    row = [0] * len(example.tokens)
    for span in example.spans:
        row[span.start] = span.end - span.start
    return row
