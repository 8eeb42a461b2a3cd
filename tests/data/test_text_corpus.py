"""Generic corpora (`text:DIR`, `parallel:DIR`, `tagged:DIR`) on tiny folders written here:
vocabularies, counts and batches against ones built by hand from the files, the tokenizers, the
held-out splits, and bad input (non-UTF-8, empty splits, CRLF, a 100,000-token line, parallel
files of different lengths, ragged CoNLL columns)."""
import collections
import re
import unicodedata

import numpy as np
import pytest

import data
from data import parallel_corpus, tagged_corpus, text_corpus
from data.errors import CorpusNotFoundError, DataFormatError
from data.tokenize import TextPipeline
from data.vocab import BOS_ID, EOS_ID, SPECIALS, UNK_ID

TRAIN = ["the cat sat on the mat", "the dog sat", "", "a cat ran on the mat", "the cat"]
VALID = ["the cat ran fast", "zebra"]


def write(folder, name, lines, newline="\n", encoding="utf-8"):
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes("".join(line + newline for line in lines).encode(encoding))


@pytest.fixture
def text_dir(tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "train.txt", TRAIN)
    write(folder, "valid.txt", VALID)
    write(folder, "test.txt", ["on the dog"])
    return folder


def all_batches(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


def test_text_vocabulary_counts_and_every_form_equal_hand_built(text_dir):
    corpus = data.load(f"text:{text_dir}")
    lines = {"train": [s.split() for s in TRAIN if s], "valid": [s.split() for s in VALID],
             "test": [["on", "the", "dog"]]}
    counts = collections.Counter(w for s in lines["train"] for w in s)
    expected_vocab = list(SPECIALS) + sorted(counts, key=lambda w: (-counts[w], w))
    assert corpus.vocab.tokens == expected_vocab
    assert corpus.splits == ("train", "valid", "test") and corpus.forms == text_corpus.FORMS
    index = {w: i for i, w in enumerate(expected_vocab)}
    ids = {split: [[index.get(w, UNK_ID) for w in s] for s in ss] for split, ss in lines.items()}
    for split in corpus.splits:
        assert corpus.num_examples(split) == len(lines[split])
        assert corpus.num_tokens(split) == sum(len(s) + 1 for s in lines[split])
    assert corpus.info["blank_lines"] == {"train.txt": 1, "valid.txt": 0, "test.txt": 0}

    # "zebra" and "fast" are not training words: <unk>.
    (sentences,) = all_batches(corpus.dataset("valid", "sentences", 8))
    assert sentences["inputs"].tolist() == [[BOS_ID, 4, 5, index["ran"], UNK_ID], [BOS_ID, UNK_ID,
                                                                                     0, 0, 0]]
    assert sentences["targets"].tolist() == [[4, 5, index["ran"], UNK_ID, EOS_ID],
                                             [UNK_ID, EOS_ID, 0, 0, 0]]
    assert sentences["lengths"].tolist() == [5, 2]

    (tokens,) = all_batches(corpus.dataset("train", "tokens", 8))
    width = max(map(len, ids["train"]))
    assert tokens["tokens"].tolist() == [s + [0] * (width - len(s)) for s in ids["train"]]

    stream = np.concatenate([s + [EOS_ID] for s in ids["train"]])
    (batch,) = all_batches(corpus.dataset("train", "stream", 1, seq_len=len(stream)))
    assert batch["targets"][0].tolist() == stream.tolist()
    assert batch["inputs"][0].tolist() == [EOS_ID] + stream[:-1].tolist()

    (bow,) = all_batches(corpus.dataset("valid", "bow", 8))
    expected = np.zeros((1, len(expected_vocab)))  # "zebra" alone: no known word, left out
    for w in ["the", "cat", "ran"]:
        expected[0, index[w]] += 1
    np.testing.assert_array_equal(bow["counts"], expected)
    assert [sum(len(b["counts"]) for b in all_batches(corpus.dataset(split, "bow", 2)))
            for split in corpus.splits] == [4, 1, 1]


def test_generic_forms_are_the_declared_ones(text_dir, tmp_path):
    write(tmp_path / "p", "train.src", ["a b"])
    write(tmp_path / "p", "train.tgt", ["x y"])
    write(tmp_path / "t", "train.txt", ["a N", "b V", ""])
    for prefix, folder in [("text", text_dir), ("parallel", tmp_path / "p"),
                           ("tagged", tmp_path / "t")]:
        corpus = data.load(f"{prefix}:{folder}", valid_fraction=0, test_fraction=0)
        assert corpus.forms == data.GENERIC_FORMS[prefix]


def test_tokenizers_and_normalisation():
    text = "Don't STOP—now.  Ｃafé"
    assert TextPipeline().tokens(text) == ["Don't", "STOP—now.", "Ｃafé"]
    assert TextPipeline("punctuation", lowercase=True).tokens(text) == [
        "don", "'", "t", "stop", "—", "now", ".", "ｃafé"]
    nfkc = TextPipeline(unicode_form="NFKC").tokens(text)
    assert nfkc[-1] == "Café" and nfkc[-1] == unicodedata.normalize("NFKC", "Ｃafé")
    assert TextPipeline("characters").tokens("a b") == ["a", " ", "b"]
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        TextPipeline("bpe")


def test_tensorflow_tokenizer_is_pythons_on_every_code_point():
    """`TextPipeline.tokenize` (tf.strings, the one implementation training and serving share)
    splits and lower-cases as Python's str.split, re's \\w+|[^\\w\\s] and str.lower do, for
    every character below U+2C00 (Latin … Greek, Cyrillic, Arabic, Indic scripts, the general
    punctuation and spaces U+2000–U+206F) and the ideographic space and full-width forms. (Above,
    the Unicode versions of Python and of TensorFlow's RE2/ICU tables may differ.)"""
    chars = [chr(c) for c in [*range(1, 0x2C00), 0x3000, *range(0xFF01, 0xFF5F)]]
    lines = [f"Ab{c}Cd {c}" for c in chars]
    assert TextPipeline().tokens_of(lines) == [line.split() for line in lines]
    assert TextPipeline("punctuation").tokens_of(lines) == [
        re.findall(r"\w+|[^\w\s]", line) for line in lines]
    assert TextPipeline("characters", lowercase=True).tokens_of(lines) == [
        list(line.lower()) for line in lines]


def test_options_reach_the_corpus_and_are_recorded(text_dir):
    corpus = data.load(f"text:{text_dir}", tokenizer="characters", lowercase=True)
    assert corpus.info["text_pipeline"] == {"tokenizer": "characters", "lowercase": True,
                                            "unicode_form": None}
    chars = collections.Counter(c for s in TRAIN if s for c in s)
    assert set(corpus.vocab.tokens[4:]) == set(chars)
    assert corpus.num_tokens("test") == len("on the dog") + 1


def test_vocab_size_and_min_count(text_dir):
    # train counts: the 5, cat 3, sat 2, on 2, mat 2, dog 1, a 1, ran 1
    capped = data.load(f"text:{text_dir}", vocab_size=6)
    assert capped.vocab.tokens == [*SPECIALS, "the", "cat"]
    frequent = data.load(f"text:{text_dir}", min_count=2)
    assert frequent.vocab.tokens == [*SPECIALS, "the", "cat", "mat", "on", "sat"]
    (batch,) = all_batches(frequent.dataset("train", "tokens", 8))
    assert batch["tokens"][1].tolist()[:3] == [4, UNK_ID, 8]  # the dog sat
    assert frequent.info["vocabulary"] == {"vocab_size": None, "min_count": 2}
    with pytest.raises(ValueError, match="vocab_size must be > 4"):
        data.load(f"text:{text_dir}", vocab_size=4)


def test_missing_splits_are_cut_from_train_by_fraction_and_seed(tmp_path):
    lines = [f"{i:02d}" for i in range(50)]
    write(tmp_path / "c", "train.txt", lines)

    def load(**options):
        return data.load(f"text:{tmp_path / 'c'}", tokenizer="characters", **options)

    def split_lines(corpus, split):
        (batch,) = all_batches(corpus.dataset(split, "tokens", 100))
        return ["".join(corpus.vocab.decode(row[:n])) for row, n in
                zip(batch["tokens"], batch["lengths"])]

    corpus = load(valid_fraction=0.2, test_fraction=0.1, split_seed=3)
    parts = {split: split_lines(corpus, split) for split in corpus.splits}
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [35, 10, 5]
    order = np.random.default_rng(3).permutation(50)
    assert parts["test"] == [lines[i] for i in sorted(order[:5])]
    assert parts["valid"] == [lines[i] for i in sorted(order[5:15])]
    assert parts["train"] == [lines[i] for i in sorted(order[15:])]
    # The vocabulary is built after the cut, on the remaining training lines only.
    counts = collections.Counter("".join(parts["train"]))
    assert corpus.vocab.tokens == list(SPECIALS) + sorted(counts, key=lambda c: (-counts[c], c))
    assert corpus.info["held_out"]["valid"] == {"from": "train", "fraction": 0.2, "seed": 3,
                                                "examples": 10}
    assert split_lines(load(valid_fraction=0.2, test_fraction=0.1, split_seed=3),
                       "valid") == parts["valid"]
    assert split_lines(load(valid_fraction=0.2, test_fraction=0.1, split_seed=4),
                       "valid") != parts["valid"]
    assert load(test_fraction=0).splits == ("train", "valid")


def test_too_few_lines_to_cut_splits(tmp_path):
    write(tmp_path / "c", "train.txt", ["only one line"])
    with pytest.raises(DataFormatError, match=r"train\.txt:1: expected enough examples to cut"):
        data.load(f"text:{tmp_path / 'c'}")


def test_non_utf8_names_file_and_line(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "train.txt").write_bytes(b"fine line\nalso fine\ncaf\xe9 latin-1\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:3: expected UTF-8 text \(invalid "
                                              r"byte at column 4\), got 'caf\\\\xe9 latin-1'"):
        data.load(f"text:{folder}")


def test_crlf_and_bom_read_as_lf(tmp_path):
    write(tmp_path / "lf", "train.txt", TRAIN + VALID)
    write(tmp_path / "crlf", "train.txt", TRAIN + VALID, newline="\r\n")
    (tmp_path / "crlf" / "train.txt").write_bytes(
        b"\xef\xbb\xbf" + (tmp_path / "crlf" / "train.txt").read_bytes())
    lf, crlf = (data.load(f"text:{tmp_path / n}") for n in ("lf", "crlf"))
    assert crlf.vocab.tokens == lf.vocab.tokens and "\r" not in "".join(crlf.vocab.tokens)
    for split in lf.splits:
        assert crlf.num_tokens(split) == lf.num_tokens(split)
        a, b = (all_batches(c.dataset(split, "sentences", 4)) for c in (lf, crlf))
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x["targets"], y["targets"])


@pytest.mark.parametrize("content", [[], ["", "   ", "\t"]])
def test_empty_split_is_an_error_naming_the_file(tmp_path, content):
    write(tmp_path / "c", "train.txt", TRAIN)
    write(tmp_path / "c", "valid.txt", content)
    with pytest.raises(DataFormatError, match=r"valid\.txt:1: expected at least one non-blank "
                                              r"line example, got 'an empty split'"):
        data.load(f"text:{tmp_path / 'c'}")


def test_long_line_kept_by_default_and_dropped_by_max_line_tokens(tmp_path):
    long_line = " ".join(f"w{i % 7}" for i in range(100_000))
    write(tmp_path / "c", "train.txt", TRAIN)
    write(tmp_path / "c", "valid.txt", VALID + [long_line])
    kept = data.load(f"text:{tmp_path / 'c'}", test_fraction=0)
    assert kept.num_tokens("valid") == 5 + 2 + 100_001
    batches = all_batches(kept.dataset("valid", "stream", 4, seq_len=1000))
    assert sum(b["mask"].sum() for b in batches) == 100_008
    dropped = data.load(f"text:{tmp_path / 'c'}", test_fraction=0, max_line_tokens=100)
    assert dropped.num_tokens("valid") == 5 + 2
    assert dropped.info["dropped_long"] == {"train": 0, "valid": 1}
    write(tmp_path / "c", "valid.txt", [long_line])
    with pytest.raises(DataFormatError, match=r"valid\.txt:1: expected at least one non-blank "
                                              r"line example of at most 100 tokens"):
        data.load(f"text:{tmp_path / 'c'}", test_fraction=0, max_line_tokens=100)


def test_bow_refuses_a_split_without_known_words(tmp_path):
    write(tmp_path / "c", "train.txt", TRAIN)
    write(tmp_path / "c", "valid.txt", ["zebra", "yak"])
    corpus = data.load(f"text:{tmp_path / 'c'}", test_fraction=0)
    with pytest.raises(DataFormatError, match=r"valid\.txt:1: expected a document with at least "
                                              "one in-vocabulary word"):
        corpus.dataset("valid", "bow", 4)


def test_missing_folder_or_train_file(tmp_path):
    with pytest.raises(CorpusNotFoundError, match=r"train\.txt"):
        data.load(f"text:{tmp_path / 'nowhere'}")
    write(tmp_path / "p", "train.src", ["a"])
    with pytest.raises(CorpusNotFoundError, match=r"train\.tgt is missing"):
        data.load(f"parallel:{tmp_path / 'p'}")
    with pytest.raises(ValueError, match="names no folder"):
        data.load("text:")
    with pytest.raises(ValueError, match="text:DIR, parallel:DIR, tagged:DIR"):
        data.load("nope")


def test_parallel_batches_references_and_vocabularies(tmp_path):
    folder = tmp_path / "p"
    write(folder, "train.src", ["a b c", "b c", "", "c"])
    write(folder, "train.tgt", ["X Y", "Y", "Z", "Y Y Z"])
    write(folder, "valid.src", ["a q"])
    write(folder, "valid.tgt", ["Raw  Y"])
    corpus = data.load(f"parallel:{folder}", test_fraction=0)
    assert corpus.source_vocab.tokens == [*SPECIALS, "c", "b", "a"]
    # The pair with a blank source is skipped: Y 3, X 1, Z 1 (ties in string order).
    assert corpus.target_vocab.tokens == [*SPECIALS, "Y", "X", "Z"] == corpus.vocab.tokens
    assert corpus.info["blank_lines"] == {"train.src": 1, "valid.src": 0}
    (batch,) = all_batches(corpus.dataset("train", "parallel", 8))
    assert batch["source"].tolist() == [[6, 5, 4], [5, 4, 0], [4, 0, 0]]
    assert batch["target_inputs"].tolist() == [[BOS_ID, 5, 4, 0], [BOS_ID, 4, 0, 0],
                                               [BOS_ID, 4, 4, 6]]
    assert batch["target_targets"].tolist() == [[5, 4, EOS_ID, 0], [4, EOS_ID, 0, 0],
                                                [4, 4, 6, EOS_ID]]
    assert corpus.num_tokens("train") == 6 and corpus.num_examples("train") == 3
    (source_side,) = all_batches(corpus.dataset("valid", "sentences", 8, side="source"))
    assert source_side["targets"].tolist() == [[6, UNK_ID, EOS_ID]]
    assert corpus.references("valid") == ["Raw Y"]
    assert corpus.references("valid", raw=True) == ["Raw  Y"]


def test_parallel_sides_of_different_lengths(tmp_path):
    folder = tmp_path / "p"
    write(folder, "train.src", ["a", "b", "c"])
    write(folder, "train.tgt", ["x", "y"])
    with pytest.raises(DataFormatError, match=r"train\.tgt:3: expected 3 lines, aligned with "
                                              r".*train\.src, got 'end of file'"):
        data.load(f"parallel:{folder}")


def test_tagged_columns_tags_and_docstart(tmp_path):
    folder = tmp_path / "t"
    write(folder, "train.txt", ["-DOCSTART- -X- O", "", "The DT B-NP", "cat NN I-NP", "",
                                "", "runs VBZ B-VP", ""])
    write(folder, "valid.txt", ["the DT B-NP", "dog NN I-NP", "barks VBZ B-VP"])
    corpus = data.load(f"tagged:{folder}", lowercase=True, test_fraction=0)
    assert corpus.vocab.tokens == [*SPECIALS, "cat", "runs", "the"]
    assert corpus.pos_vocab.tokens == ["B-NP", "B-VP", "I-NP"]  # over all splits, by count
    assert corpus.info["num_tags"] == 3 and corpus.num_tokens("train") == 3
    (batch,) = all_batches(corpus.dataset("valid", "tagged", 8))
    assert batch["tokens"].tolist() == [[6, UNK_ID, UNK_ID]]
    assert batch["tags"].tolist() == [[0, 2, 1]]
    pos = data.load(f"tagged:{folder}", tag_column=1, test_fraction=0)
    assert pos.pos_vocab.tokens == ["DT", "NN", "VBZ"]
    assert pos.vocab.tokens[4:] == ["The", "cat", "runs"]


def test_tagged_sentence_dropped_with_its_only_tag(tmp_path):
    folder = tmp_path / "t"
    write(folder, "train.txt", ["a DT", "b NN", "", "c X", "d X", "e X", ""])
    corpus = data.load(f"tagged:{folder}", max_line_tokens=2, valid_fraction=0,
                       test_fraction=0)
    assert corpus.pos_vocab.tokens == ["DT", "NN"] and corpus.info["dropped_long"] == {"train": 1}
    (batch,) = all_batches(corpus.dataset("train", "tagged", 8))
    assert batch["tags"].tolist() == [[0, 1]]


def test_tagged_ragged_columns_and_tokenizer(tmp_path):
    folder = tmp_path / "t"
    write(folder, "train.txt", ["a DT", "b NN", "", "c NN extra"])
    with pytest.raises(DataFormatError, match=r"train\.txt:4: expected 2 whitespace-separated "
                                              "columns"):
        data.load(f"tagged:{folder}")
    with pytest.raises(ValueError, match="does not apply to a tagged corpus"):
        tagged_corpus.load(str(folder), tokenizer="punctuation")
    assert parallel_corpus.FORMS == ("parallel", "sentences")
