"""Both E2E models' evaluation reports the challenge's five metrics (`tflv.text_metrics`) on a
tiny E2E corpus, and they are the metrics of the generations against all references."""
import numpy as np
import pytest

import data
from tests.training import adam_step
from tflv import text_metrics
from tflv.models import get_model_class

RECORDS = [("Blue Spice", "riverside"), ("The Vaults", "city centre"), ("Zizzi", "riverside")]
TEST_REFERENCES = {0: ["Blue Spice is by the river.", "Blue Spice is in the riverside area."],
                   1: ["The Vaults is in the city centre."]}


def _source(name: str, area: str) -> str:
    return f"__start_name__ {name} __end_name__ __start_area__ {area} __end_area__"


def _sentence(name: str, area: str) -> str:
    words = name.split() + ["is", "in", "the"] + area.split() + ["area", "."]
    n, a = len(name.split()), len(area.split())
    spans = f"0,{n},0 {n + 3},{n + 3 + a},5 {n + 4 + a},{n + 5 + a},7 {n + 5 + a},{n + 6 + a},8"
    return " ".join(words + ["<eos>"]) + "|||" + spans


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "e2e"
    folder.mkdir()
    for split, copies in (("train", 3), ("valid", 1)):
        (folder / f"src_{split}.txt").write_text(
            "".join(_source(*r) + "\n" for r in RECORDS * copies), encoding="utf-8")
        (folder / f"{split}.txt").write_text(
            "".join(_sentence(*r) + "\n" for r in RECORDS * copies), encoding="utf-8")
    (folder / "src_test.txt").write_text(
        "".join(_source(*RECORDS[i]) + "\n" for i in TEST_REFERENCES), encoding="utf-8")
    rows = ['"mr","ref"'] + [f'"name[{RECORDS[i][0]}], area[{RECORDS[i][1]}]","{ref}"'
                             for i, refs in TEST_REFERENCES.items() for ref in refs]
    (folder / "testset_w_refs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return data.load("e2e", data_dir=str(root))


@pytest.mark.slow  # a Meteor 1.5 start per evaluation: over 10 s on a loaded 2-core machine
@pytest.mark.skipif(text_metrics.coco_metrics_unavailable() is not None,
                    reason=str(text_metrics.coco_metrics_unavailable()))
@pytest.mark.parametrize("name", ["copy_attention", "neural_template"])
def test_e2e_evaluation_reports_the_challenge_metrics_of_its_generations(name, corpus,
                                                                       monkeypatch):
    values = dict(embed_dim=8, hidden_dim=8, num_states=3, beam_size=2, num_templates=2)
    model_cls = get_model_class(name)
    model = model_cls.from_corpus(corpus, model_cls.Config.pick(values))
    if name == "neural_template":
        model.config["template_examples"] = 6
    batch = next(iter(corpus.dataset("train", "parallel", 4)))
    assert np.isfinite(float(adam_step(model, 1e-2)(batch)))
    seen = []  # what the model hands to challenge_scores, scored again below
    score = text_metrics.challenge_scores
    monkeypatch.setattr(text_metrics, "challenge_scores",
                        lambda h, r: seen.append((list(h), r)) or score(h, r))
    monkeypatch.setattr(corpus, "detokenize", lambda text: "detok " + text)
    scores = model.evaluate_corpus(corpus, "test", 4)
    assert set(scores) == set(text_metrics.METRICS)
    (hypotheses, references), = seen
    assert references == list(TEST_REFERENCES.values())  # every reference of each record set
    assert len(hypotheses) == len(TEST_REFERENCES)
    assert all(h.startswith("detok ") for h in hypotheses)  # written as the references are
    assert scores["bleu"] == text_metrics.multi_reference_bleu(
        hypotheses, references, tokenized=False, lowercase=True)
    assert scores["nist"] == text_metrics.nist(hypotheses, references)
    assert scores["rouge_l"] == pytest.approx(text_metrics.coco_scores(
        hypotheses, references, metrics=["rouge_l"])["rouge_l"])
