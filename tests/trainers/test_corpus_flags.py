"""The corpus flags (`trainers.corpus_flags`) and model ↔ corpus fit: the flags become loader
options (and are refused where they do not apply), every model is built and scores the generic
corpus that offers its form (one model per evaluation kind also evaluates: tag accuracy, BLEU
against the references, topic NPMI), and a model is refused a corpus without it."""
import os

import numpy as np
import pytest
from absl import app

import data
from tflv.models import MODELS
from trainers import corpus_flags
from trainers import flags as tflv_flags

FLAGS = tflv_flags.FLAGS
TINY = dict(embed_dim=8, hidden_dim=8, latent_dim=4, num_topics=3, num_states=3,
            num_components=2, num_softmaxes=2, summary_length=2, num_chains=2, num_flows=1,
            iw_samples=2, latent_samples=2, summary_samples=2, attention_samples=2,
            bleu_max_examples=2, beam_size=1, mean_field_iterations=2)
WORDS = "the a cat dog sat ran on mat".split()
TAGS = {"the": "DT", "a": "DT", "cat": "NN", "dog": "NN", "mat": "NN", "sat": "VB", "ran": "VB",
        "on": "IN"}


def sentences(rng, n):
    return [" ".join(rng.choice(WORDS, rng.integers(2, 7))) for _ in range(n)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One tiny folder per generic corpus kind (random sentences, a fixed seed)."""
    root = tmp_path_factory.mktemp("corpora")
    rng = np.random.default_rng(0)
    lines = sentences(rng, 40)
    (root / "text").mkdir()
    (root / "text" / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "parallel").mkdir()
    (root / "parallel" / "train.src").write_text("\n".join(lines) + "\n")
    (root / "parallel" / "train.tgt").write_text("\n".join(line.upper() for line in lines)
                                                 + "\n")
    (root / "tagged").mkdir()
    (root / "tagged" / "train.txt").write_text("".join(
        "".join(f"{w} {TAGS[w]}\n" for w in line.split()) + "\n" for line in lines))
    return {kind: str(root / kind) for kind in ("text", "parallel", "tagged")}


def parse(*args):
    FLAGS.unparse_flags()
    FLAGS(["train", *args])


@pytest.fixture
def flags_parsed():
    yield parse
    FLAGS.unparse_flags()


def test_flags_become_loader_options(folders, flags_parsed):
    dataset = f"text:{folders['text']}"
    flags_parsed(f"--dataset={dataset}", "--lowercase", "--vocab_size=7", "--valid_fraction=0.25",
                 "--tokenizer=punctuation")
    options = corpus_flags.dataset_options(dataset)
    assert options == {"tokenizer": "punctuation", "lowercase": True, "unicode_form": None,
                       "vocab_size": 7, "min_count": 1, "max_line_tokens": None,
                       "valid_fraction": 0.25, "test_fraction": 0.1, "split_seed": 0}
    corpus = data.load(dataset, **options)
    assert len(corpus.vocab) == 7 and corpus.num_examples("valid") == 10
    assert corpus.info["text_pipeline"]["tokenizer"] == "punctuation"
    assert corpus_flags.canonical_dataset("text:rel/dir") == f"text:{os.path.abspath('rel/dir')}"
    assert corpus_flags.run_name("text:/a/my corpus/") == "text_my_corpus"
    assert corpus_flags.run_name("ptb") == "ptb"
    assert corpus_flags.canonical_dataset("tfds:news20/nvdm:text") == "tfds:news20/nvdm:text"
    assert corpus_flags.run_name("tfds:news20/nvdm:text") == "tfds_news20_nvdm_text"


@pytest.mark.parametrize("args, dataset, message", [
    (["--lowercase"], "ptb", "--lowercase does not apply to --dataset=ptb"),
    (["--vocab_size=10", "--min_count=2"], "news20", "--vocab_size, --min_count does not apply"),
    (["--tokenizer=characters"], "tagged:x", "tagged:DIR is tokenized by its columns"),
    (["--tag_column=1"], "text:x", "--tag_column is for tagged:DIR corpora"),
    (["--tfds_data_dir=x"], "parallel:x", "--tfds_data_dir is for tfds:NAME corpora"),
])
def test_flags_refused_where_they_do_not_apply(flags_parsed, args, dataset, message):
    flags_parsed(*args)
    with pytest.raises(app.UsageError, match=message):
        corpus_flags.dataset_options(dataset)


def test_bundled_options_unchanged(flags_parsed):
    flags_parsed("--news20_variant=prodlda")
    assert corpus_flags.dataset_options("news20") == {"variant": "prodlda"}
    assert corpus_flags.dataset_options("ptb") == {}
    assert corpus_flags.dataset_options("e2e") == {}  # the loader's default, as old runs


def test_e2e_takes_min_count(flags_parsed):
    flags_parsed("--min_count=10")
    assert corpus_flags.dataset_options("e2e") == {"min_count": 10}
    with pytest.raises(app.UsageError, match="--min_count does not apply to --dataset=ptb"):
        corpus_flags.dataset_options("ptb")


def hparams(model_cls):
    values = {name: FLAGS[name].default for name in tflv_flags.MODEL_FLAGS}
    values.update({k: v for k, v in TINY.items() if k in values})
    return tflv_flags.model_config(model_cls, values)


# The generic corpus each form is read from (taggers: tagged, so that their accuracy is scored).
SOURCE = {"stream": "text", "sentences": "text", "bow": "text", "tokens": "tagged",
          "parallel": "parallel"}
PREDICTED = {"stream": lambda b: b["mask"], "sentences": lambda b: b["mask"],
             "tokens": lambda b: b["mask"], "bow": lambda b: b["counts"],
             "parallel": lambda b: b["target_mask"]}


EVALUATED = ("hmm", "seq2seq", "nvdm")  # evaluation over tagged:, parallel:, text: bow


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_scores_and_evaluates_on_the_generic_corpus_of_its_form(name, folders):
    model_cls = MODELS[name]
    form = model_cls.input_form
    kind = SOURCE[form]
    corpus = data.load(f"{kind}:{folders[kind]}")
    corpus_flags.check_model_fits(name, model_cls, corpus.name, corpus)
    model = model_cls.from_corpus(corpus, hparams(model_cls))
    batch = next(iter(corpus.dataset("train", form, 8, shuffle=True, seed=1,
                                     **({"seq_len": 6} if form == "stream" else {}))))
    objective = model.objective(batch, training=True)
    assert np.all(np.isfinite(objective.loss.numpy()))
    # Every predicted token of the batch is counted once (the tokens/s and perplexity
    # denominator), whatever the corpus.
    np.testing.assert_allclose(objective.stats["tokens"].numpy().sum(),
                               PREDICTED[form](batch).numpy().sum())
    if name not in EVALUATED:
        return
    metrics = model.evaluate_corpus(corpus, "valid", 16)
    expected = {"hmm": ("many_to_one", 0, 1), "seq2seq": ("bleu", 0, 100),
                "nvdm": ("npmi", -1, 1)}[name]
    assert expected[1] <= metrics[expected[0]] <= expected[2], metrics


@pytest.mark.parametrize("name, kind", [("seq2seq", "text"), ("nvdm", "tagged"),
                                        ("rnnlm", "parallel")])
def test_model_refused_a_corpus_without_its_form(name, kind, folders):
    corpus = data.load(f"{kind}:{folders[kind]}")
    form = MODELS[name].input_form
    with pytest.raises(app.UsageError, match=(
            f"--model={name} reads batches of form '{form}', which --dataset={kind}:.* does not "
            f"offer \\(its forms: {', '.join(corpus.forms)}\\); datasets with '{form}': .*"
            f"{SOURCE[form]}:DIR")):
        corpus_flags.check_model_fits(name, MODELS[name], corpus.name, corpus)
