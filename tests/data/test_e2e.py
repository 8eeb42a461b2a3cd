"""The E2E reader against the counts of shared/data/README.md (e2e section), files read back
exactly, and bad lines named by file:line."""
import csv
import os

import numpy as np
import pytest

import data
from data import e2e
from data.errors import DataFormatError

README_COUNTS = {  # lines, whitespace tokens of src_*.txt / of the sentences (before |||)
    "train": (42061, 856433, 983511), "valid": (4672, 103301, 120941),
    "test": (630, 16220, None)}


@pytest.fixture(scope="module")
def corpus(data_dir):
    return data.load("e2e", data_dir=data_dir)


def test_counts_match_the_data_readme(corpus, data_dir):
    assert corpus.splits == ("train", "valid", "test")
    for split, (lines, source_tokens, sentence_tokens) in README_COUNTS.items():
        examples = e2e.examples(data_dir, split)
        assert len(examples) == lines == corpus.num_examples(split)
        assert sum(len(e2e.source_tokens(e.records)) for e in examples) == source_tokens
        if sentence_tokens is not None:
            assert sum(len(e.tokens) for e in examples) == sentence_tokens
            assert corpus.num_tokens(split) == sentence_tokens
        assert all(3 <= len(e.records) <= 8 for e in examples)
    distinct = {e.records for e in e2e.examples(data_dir, "valid")}
    assert len(distinct) == 547  # = the lines of src_uniq_valid.txt
    with open(os.path.join(data_dir, "e2e", "src_uniq_valid.txt"), encoding="utf-8") as f:
        unique = {e2e.parse_records(line, "src_uniq_valid.txt", n) for n, line in enumerate(f, 1)}
    assert unique == distinct


def test_test_references_group_the_csv_by_mr(data_dir):
    refs = e2e.reference_sets(data_dir)
    assert len(refs) == 630 and sum(len(r) for r in refs) == 4693
    assert refs[0][:2] == ["A coffee shop in the city centre area called Blue Spice.",
                           "Blue Spice is a coffee shop in city centre."]


def test_spans_copy_the_records_they_are_labelled_with(data_dir):
    """Labels 0..6 name fields: most spans of a field label are a substring of that record."""
    hits = total = 0
    for example in e2e.examples(data_dir, "valid")[:500]:
        values = {r.field: " ".join(r.value) for r in example.records}
        for span in example.spans:
            label = e2e.SPAN_LABELS[span.label]
            text = " ".join(example.tokens[span.start:span.end])
            if label == "<eos>":
                assert span.end == len(example.tokens)
            elif label in values:
                total += 1
                hits += text in values[label]
    assert total > 1000 and hits / total > 0.85


def test_parallel_batches_read_back_the_files(corpus, data_dir):
    batch = next(iter(corpus.dataset("valid", "parallel", 4)))
    with open(os.path.join(data_dir, "e2e", "src_valid.txt"), encoding="utf-8") as f:
        sources = [next(f).split() for _ in range(4)]
    with open(os.path.join(data_dir, "e2e", "valid.txt"), encoding="utf-8") as f:
        sentences = [next(f).split("|||")[0].split() for _ in range(4)]
    for i in range(4):
        n, m = int(batch["source_lengths"][i]), int(batch["target_lengths"][i])
        assert corpus.source_vocab.decode(batch["source"][i, :n].numpy()) == [
            w if w in corpus.source_vocab else "<unk>" for w in sources[i]]
        assert corpus.vocab.decode(batch["target_targets"][i, :m].numpy()) == [
            w if w in corpus.vocab else "<unk>" for w in sentences[i]]
    # each annotated span's length at its first token (`<eos>` has its own span)
    examples = e2e.examples(data_dir, "valid")[:4]
    for i, example in enumerate(examples):
        want = np.zeros(batch["target_targets"].shape[1], np.int64)
        for span in example.spans:
            want[span.start] = span.end - span.start
        np.testing.assert_array_equal(batch["target_span_lengths"][i], want)
        assert want[len(example.tokens) - 1] == 1
    records = next(iter(corpus.dataset("test", "records", 2)))
    assert set(records) == {"source", "source_lengths", "source_mask"}
    assert np.sum(records["source_mask"]) == np.sum(records["source_lengths"])
    with pytest.raises(ValueError, match="record sets only"):
        corpus.dataset("test", "parallel", 2)


@pytest.mark.parametrize("line, expected", [
    ("__start_name__ The Vaults __start_food__ pub __end_food__", "`__end_name__`"),
    ("__start_name__ The Vaults", "`__end_name__` closing .* before the end of the line"),
    ("__start_name__ The Vaults __end_eatType__", "`__end_name__`"),
    ("The __start_name__ Vaults __end_name__", "a record .* at token 1"),
    ("__start_colour__ red __end_colour__", "a field among"),
    ("__start_name__ __end_name__", "a value"),
])
def test_bad_record_lines_are_named_by_file_and_line(tmp_path, line, expected):
    folder = tmp_path / "e2e"
    folder.mkdir()
    good = "__start_name__ A __end_name__ __start_area__ riverside __end_area__\n"
    (folder / "src_test.txt").write_text(good + line + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"src_test\.txt:2: expected " + expected):
        e2e.read_split(str(folder), "test")


@pytest.mark.parametrize("annotation, expected", [
    ("0,1,0 3,5,7", r"a span inside the sentence \(0 <= start < end <= 4.*'3,5,7'"),
    ("2,2,0", "a span inside the sentence"),
    ("0,1", "a span start,end,label of integers"),
    ("0,1,9", "a span label below 9"),
    ("0,2,0 1,3,1", "spans that do not overlap, not '1,3,1'"),
])
def test_bad_spans_are_named_by_file_and_line(tmp_path, annotation, expected):
    folder = tmp_path / "e2e"
    folder.mkdir()
    (folder / "src_valid.txt").write_text("__start_name__ A __end_name__\n" * 2, encoding="utf-8")
    (folder / "valid.txt").write_text("A is nice <eos>|||0,1,0\nA is . <eos>|||" + annotation
                                      + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"valid\.txt:2: expected " + expected):
        e2e.read_split(str(folder), "valid")


def test_misaligned_files_and_missing_separator(tmp_path):
    folder = tmp_path / "e2e"
    folder.mkdir()
    (folder / "src_valid.txt").write_text("__start_name__ A __end_name__\n" * 2, encoding="utf-8")
    (folder / "valid.txt").write_text("A is nice <eos>|||0,1,0\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"valid\.txt:2: expected 2 lines"):
        e2e.read_split(str(folder), "valid")
    (folder / "valid.txt").write_text("A <eos>|||0,1,0\nA is nice <eos>\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"valid\.txt:2: expected the sentence, `\|\|\|`"):
        e2e.read_split(str(folder), "valid")


def test_reference_sets_name_the_record_set_that_disagrees(tmp_path):
    folder = tmp_path / "e2e"
    folder.mkdir()
    for name in ("src_train.txt", "src_valid.txt"):
        (folder / name).write_text("__start_name__ A __end_name__\n", encoding="utf-8")
    for name in ("train.txt", "valid.txt"):
        (folder / name).write_text("A <eos>|||0,1,0\n", encoding="utf-8")
    (folder / "src_test.txt").write_text(
        "__start_name__ A __end_name__ __start_priceRange__ less than £ 20 __end_priceRange__\n"
        "__start_name__ B __end_name__ __start_area__ riverside __end_area__\n", encoding="utf-8")
    rows = ['"mr","ref"', '"name[A], priceRange[less than £20]","A is cheap."',
            '"name[A], priceRange[less than £20]","Cheap: A."',
            '"name[B], customer rating[high]","B is rated high."']
    (folder / "testset_w_refs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"src_test\.txt:2: expected the records of MR "
                                              r"'name\[B\], customer rating\[high\]' \(row 4"):
        e2e.reference_sets(str(tmp_path))
    rows[3] = '"name[B], area[riverside]","B is by the river."'
    (folder / "testset_w_refs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert e2e.reference_sets(str(tmp_path)) == [["A is cheap.", "Cheap: A."],
                                                 ["B is by the river."]]


def test_corpus_reference_sets_hold_every_reference_of_each_record_set(corpus, data_dir):
    # valid: the README's 547 distinct record sets, their aligned sentences grouped
    valid = corpus.reference_sets("valid")
    with open(os.path.join(data_dir, "e2e", "src_uniq_valid.txt"), encoding="utf-8") as f:
        assert {text for text, _ in valid} == {line.strip() for line in f}
    assert sum(len(refs) for _, refs in valid) == 4672
    with open(os.path.join(data_dir, "e2e", "valid.txt"), encoding="utf-8") as f:
        first = f.readline().split("|||")[0].split()[:-1]  # without <eos>
    assert e2e.detokenize(" ".join(first)) in valid[0][1]
    # test: one entry per line of src_test.txt, with the CSV's 4,693 raw references
    test = corpus.reference_sets("test")
    with open(os.path.join(data_dir, "e2e", "src_test.txt"), encoding="utf-8") as f:
        assert [text for text, _ in test] == [line.strip() for line in f]
    assert sum(len(refs) for _, refs in test) == 4693
    assert corpus.offers("valid", "parallel") and not corpus.offers("test", "parallel")
    assert corpus.offers("test", "records")


@pytest.mark.slow
def test_copy_attention_and_neural_template_train_and_score_on_e2e(corpus):
    """Both e2e models take a training step on its `parallel` batches and score generations for
    the test record sets against all their references (multi-reference BLEU in [0, 100])."""
    import tensorflow as tf

    from tests.training import adam_step
    from tflv.models import get_model_class

    values = dict(embed_dim=8, hidden_dim=8, num_states=4, beam_size=2, num_templates=2,
                  bleu_max_examples=6)
    batch = next(iter(corpus.dataset("train", "parallel", 4, max_length=12)))
    for name in ("copy_attention", "neural_template"):
        tf.keras.utils.set_random_seed(0)
        model_cls = get_model_class(name)
        model = model_cls.from_corpus(corpus, model_cls.Config.pick(values))
        if name == "neural_template":
            model.config["template_examples"] = 8
        loss = float(adam_step(model, 1e-3)(batch))
        assert np.isfinite(loss)
        bleu = model.evaluate_corpus(corpus, "test", 4)["bleu"]
        assert 0.0 <= bleu <= 100.0, (name, bleu)


def test_detokenized_valid_sentences_are_the_raw_references(corpus, data_dir):
    """valid.txt tokenises devset.csv's references line by line: `detokenize` gives them back
    up to spacing for nearly all (the rest differ in the raw text's own quirks), against 3%
    for the tokenised text."""
    with open(os.path.join(data_dir, "e2e", "devset.csv"), encoding="utf-8", newline="") as f:
        raw = [" ".join(row["ref"].split()) for row in csv.DictReader(f)]
    tokenised = [" ".join(e.tokens[:-1]) for e in e2e.examples(data_dir, "valid")]
    assert len(raw) == len(tokenised) == 4672
    same = np.mean([e2e.detokenize(t) == r for t, r in zip(tokenised, raw)])
    before = np.mean([t == r for t, r in zip(tokenised, raw)])
    assert same > 0.97 and before < 0.05, (same, before)
    assert corpus.detokenize("a family - friendly pub , £ 20 - 25") == \
        "a family-friendly pub, £20-25"
