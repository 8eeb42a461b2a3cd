"""Every real corpus against the counts of shared/data/README.md, and batches that reconstruct
the files exactly (read here independently with plain Python)."""
import gzip
import os

import numpy as np
import pytest

import data
from data.vocab import EOS_ID, UNK_ID


def gather(dataset, keys):
    """Per key, the list of unpadded rows (by the batch's `lengths`/`mask`) over all batches."""
    rows = {k: [] for k in keys}
    for batch in dataset:
        b = {k: v.numpy() for k, v in batch.items()}
        for i in range(len(b["lengths"])):
            for k in keys:
                rows[k].append(b[k][i, :b["lengths"][i]].tolist())
    return rows


def known(vocab, words):
    """`words` with those outside `vocab` replaced by `<unk>` (what decoding gives back)."""
    return [w if w in vocab else "<unk>" for w in words]


def stream_targets(dataset):
    """The masked targets of a stream in token order (rows concatenated, then row after row)."""
    batches = [{k: v.numpy() for k, v in b.items()} for b in dataset]
    targets = np.concatenate([b["targets"] for b in batches], axis=1)
    mask = np.concatenate([b["mask"] for b in batches], axis=1).astype(bool)
    return targets[mask]


@pytest.fixture(scope="module")
def ptb(data_dir):
    return data.load("ptb", data_dir=data_dir)


def test_ptb_counts(ptb, data_dir):
    counts = {"train": (42068, 887521), "valid": (3370, 70390), "test": (3761, 78669)}
    assert ptb.splits == ("train", "valid", "test")
    assert len(ptb.vocab) == 10002 and ptb.info["vocab_size"] == 10002
    assert ptb.vocab.encode(["<unk>", "<eos>"]) == [UNK_ID, EOS_ID]
    for split, (lines, words) in counts.items():
        assert ptb.num_examples(split) == lines
        assert ptb.num_tokens(split) == words + lines  # one <eos> per line
    lengths = np.concatenate([b["lengths"].numpy() for b in ptb.dataset("train", "tokens", 8192)])
    assert len(lengths) == 42068 and lengths.sum() == 887521 and lengths.max() == 82


def test_ptb_stream_reconstructs_file(ptb, data_dir):
    with open(os.path.join(data_dir, "ptb", "ptb.valid.txt")) as f:
        words = [w for line in f for w in line.split() + ["<eos>"]]
    targets = stream_targets(ptb.dataset("valid", "stream", 7, seq_len=30))
    assert ptb.vocab.decode(targets) == words


def test_ptb_sentences_and_max_length(ptb, data_dir):
    with open(os.path.join(data_dir, "ptb", "ptb.valid.txt")) as f:
        lines = [line.split() for line in f]
    rows = gather(ptb.dataset("valid", "sentences", 512, max_length=10), ["inputs", "targets"])
    assert len(rows["inputs"]) == len(lines)  # evaluation never drops
    for inputs, targets, words in zip(rows["inputs"], rows["targets"], lines[:50]):
        assert ptb.vocab.decode(inputs) == ["<bos>"] + words
        assert ptb.vocab.decode(targets) == words + ["<eos>"]
    with open(os.path.join(data_dir, "ptb", "ptb.train.txt")) as f:
        short = sum(len(line.split()) <= 20 for line in f)
    kept = gather(ptb.dataset("train", "sentences", 4096, max_length=20), ["inputs"])["inputs"]
    assert len(kept) == short and max(map(len, kept)) <= 21


@pytest.mark.parametrize("variant,folder,counts", [
    ("nvdm", "20news", {"train": (11268, 1128881), "test": (7505, 720898)}),
    ("prodlda", "20news_prodlda", {"train": (11258, 991493), "test": (7487, 629312)}),
])
def test_news20_counts_and_bow_sums(data_dir, variant, folder, counts):
    corpus = data.load("news20", data_dir=data_dir, variant=variant)
    assert corpus.splits == ("train", "test")
    assert corpus.info["vocab_size"] == (2000 if variant == "nvdm" else 1995)
    for split, (docs, tokens) in counts.items():
        assert (corpus.num_examples(split), corpus.num_tokens(split)) == (docs, tokens)
    with open(os.path.join(data_dir, folder, "test.feat")) as f:  # the file, parsed here
        parsed = [line.split() for line in f]
    parsed = [p for p in parsed if len(p) > 1]
    sums = [sum(int(x.split(":")[1]) for x in p[1:]) for p in parsed]
    batches = list(corpus.dataset("test", "bow", 1000))
    lengths = np.concatenate([b["lengths"].numpy() for b in batches])
    column_sums = sum(b["counts"].numpy().sum(0) for b in batches)
    np.testing.assert_array_equal(lengths, sums)
    assert column_sums.sum() == counts["test"][1]
    first = batches[0]["counts"].numpy()[0]
    for pair in parsed[0][1:]:
        idx, count = map(int, pair.split(":"))
        assert first[idx - 1] == count
    labels = np.concatenate([b["labels"].numpy() for b in batches])
    np.testing.assert_array_equal(labels, [int(p[0]) - 1 for p in parsed])


def test_news20_train_labels(data_dir):
    corpus = data.load("news20", data_dir=data_dir)
    labels = np.concatenate([b["labels"].numpy() for b in corpus.dataset("train", "bow", 4096)])
    per_class = np.bincount(labels, minlength=20)
    assert len(per_class) == 20 and per_class.min() == 376 == per_class[19]
    assert per_class.max() == 599 and corpus.info["num_labels"] == 20


def test_conll2000(data_dir):
    corpus = data.load("conll2000", data_dir=data_dir)
    assert corpus.splits == ("train", "valid", "test")
    expected = {"train": (8936, 211727), "valid": (1844, 44352), "test": (2012, 47377)}
    for split, counts in expected.items():
        assert (corpus.num_examples(split), corpus.num_tokens(split)) == counts
    assert corpus.info["num_tags"] == 44 == len(corpus.pos_vocab)
    assert len(corpus.vocab) == 17256 + 4  # lower-cased train types + reserved ids
    assert len(data.load("conll2000", data_dir=data_dir, lowercase=False).vocab) == 19120 + 4
    with open(os.path.join(data_dir, "conll2000", "test.txt")) as f:
        lines = [line.split() for line in f]
    sentences, current = [], []
    for fields in lines:
        if fields:
            current.append(fields)
        else:
            sentences.append(current)
            current = []
    rows = gather(corpus.dataset("test", "tagged", 256), ["tokens", "tags", "chunks"])
    assert len(rows["tokens"]) == 2012
    for i in range(0, 2012, 97):
        words, pos, chunks = zip(*sentences[i])
        assert corpus.vocab.decode(rows["tokens"][i]) == known(corpus.vocab,
                                                               [w.lower() for w in words])
        assert corpus.pos_vocab.decode(rows["tags"][i]) == list(pos)
        assert corpus.chunk_vocab.decode(rows["chunks"][i]) == list(chunks)


def test_conll2000_vocabulary_options(data_dir):
    corpus = data.load("conll2000", data_dir=data_dir, min_count=2, max_size=1000)
    assert len(corpus.vocab) == 1000 == corpus.info["vocab_size"]


def test_multi30k(data_dir):
    corpus = data.load("multi30k", data_dir=data_dir)
    reverse = data.load("multi30k", data_dir=data_dir, direction="de-en")
    table = {"train": (29000, 377534, 360706), "valid": (1014, 13308, 12828),
             "test": (1000, 12968, 12103), "test_2017_flickr": (1000, 11376, 10758),
             "test_2017_mscoco": (461, 5239, 5158), "test_2018_flickr": (1071, 14697, 13707)}
    assert corpus.splits == tuple(table)
    for split, (pairs, en, de) in table.items():
        assert corpus.num_examples(split) == pairs == reverse.num_examples(split)
        assert (corpus.num_tokens(split), reverse.num_tokens(split)) == (de, en)
    assert (len(corpus.source_vocab), len(corpus.target_vocab)) == (10210 + 4, 18722 + 4)
    assert corpus.vocab is corpus.target_vocab and reverse.source_vocab is corpus.target_vocab
    assert len(data.load("multi30k", data_dir=data_dir, min_count=2).target_vocab) == 7855 + 4
    tok = os.path.join(data_dir, "multi30k", "tok")
    with open(os.path.join(tok, "val.lc.norm.tok.en")) as f:
        en = [line.split() for line in f]
    with open(os.path.join(tok, "val.lc.norm.tok.de")) as f:
        de = [line.split() for line in f]
    batch = {k: v.numpy() for k, v in next(iter(corpus.dataset("valid", "parallel", 8))).items()}
    for i in range(8):
        n, m = batch["source_lengths"][i], batch["target_lengths"][i]
        target = known(corpus.target_vocab, de[i])
        assert corpus.source_vocab.decode(batch["source"][i, :n]) == known(corpus.source_vocab,
                                                                           en[i])
        assert corpus.target_vocab.decode(batch["target_inputs"][i, :m]) == ["<bos>"] + target
        assert corpus.target_vocab.decode(batch["target_targets"][i, :m]) == target + ["<eos>"]
        assert batch["source_mask"][i].sum() == n and batch["target_mask"][i].sum() == m
    english = gather(corpus.dataset("valid", "sentences", 2000, side="en"), ["targets"])
    assert [corpus.source_vocab.decode(t)[:-1] for t in english["targets"]] == [
        known(corpus.source_vocab, s) for s in en]
    assert corpus.references("valid") == [" ".join(s) for s in de]
    with gzip.open(os.path.join(data_dir, "multi30k", "raw", "test_2016_flickr.de.gz"), "rt") as f:
        raw = f.read().splitlines()
    assert corpus.references("test", raw=True) == raw and len(raw) == 1000


def test_tinyshakespeare(data_dir):
    corpus = data.load("tinyshakespeare", data_dir=data_dir)
    with open(os.path.join(data_dir, "tinyshakespeare", "input.txt"), newline="") as f:
        text = f.read()
    assert len(text) == 1115394 and len(set(text)) == 65 == len(corpus.vocab) - 4
    assert corpus.splits == ("train", "valid")
    assert (corpus.num_tokens("train"), corpus.num_tokens("valid")) == (1003854, 111540)
    targets = stream_targets(corpus.dataset("valid", "stream", 16, seq_len=64))
    assert "".join(corpus.vocab.decode(targets)) == text[1003854:]
