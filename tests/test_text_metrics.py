"""The E2E challenge's metrics (`tflv.text_metrics`) against values computed without them: the
challenge's own script, nltk's NIST, and each metric's formula by hand.

`CHALLENGE` holds what the challenge's script prints for `HYPOTHESES` / `REFERENCES`
(tuetschek/e2e-metrics at its newest commit, `./measure_scores.py ref.txt hyp.txt`: MT-Eval
v13a's Perl for BLEU and NIST, the MS-COCO scripts with Meteor 1.5 and CoreNLP 3.4.1 for the
rest; BLEU, METEOR and ROUGE-L printed on [0, 1] with 4 decimals, here × 100).
"""
import math
import warnings

import pytest

from tflv import text_metrics
from tflv.text_metrics import challenge_scores, coco_scores, mteval_tokens, nist

HYPOTHESES = [
    "The Vaults is a cheap pub near Café Adriatic.",
    "Blue Spice is a coffee shop in the city centre",
    "the Eagle is a family-friendly restaurant , it's rated 5 out of 5 .",
    "Zizzi serves English food for £20-25."]
REFERENCES = [
    ["The Vaults is a pub with prices under £20, near Café Adriatic.",
     "Near Café Adriatic, The Vaults is a cheap pub."],
    ["A coffee shop in the city centre area called Blue Spice.",
     "Blue Spice is a coffee shop in city centre.",
     "There is a coffee shop Blue Spice in the city centre area."],
    ["The Eagle restaurant is family friendly and has a customer rating of 5 out of 5."],
    ["Zizzi is a restaurant serving English food costing £20-25.",
     "For £20-25, Zizzi offers English food.",
     "English food is available at Zizzi.", "Zizzi: English food, moderate prices."]]
CHALLENGE = {"bleu": 59.81, "nist": 5.4658, "meteor": 44.82, "rouge_l": 72.07, "cider": 4.2940}
TOLERANCE = {"bleu": 5e-3, "nist": 5e-5, "meteor": 5e-3, "rouge_l": 5e-3, "cider": 5e-5}

needs_java = pytest.mark.skipif(text_metrics.coco_metrics_unavailable() is not None,
                                reason=str(text_metrics.coco_metrics_unavailable()))


def test_bleu_and_nist_match_the_challenge_script():
    scores = {"bleu": text_metrics.multi_reference_bleu(HYPOTHESES, REFERENCES, tokenized=False,
                                                        lowercase=True),
              "nist": nist(HYPOTHESES, REFERENCES)}
    for name, value in scores.items():
        assert value == pytest.approx(CHALLENGE[name], abs=TOLERANCE[name]), name


@needs_java
def test_rouge_l_and_cider_match_the_challenge_script():
    scores = coco_scores(HYPOTHESES, REFERENCES, metrics=["rouge_l", "cider"])
    assert set(scores) == {"rouge_l", "cider"}
    for name, value in scores.items():
        assert value == pytest.approx(CHALLENGE[name], abs=TOLERANCE[name]), name


@pytest.mark.slow  # Meteor 1.5 loads its paraphrase table: over 10 s on a loaded 2-core machine
@needs_java
def test_all_five_match_the_challenge_script():
    scores = challenge_scores(HYPOTHESES, REFERENCES)
    assert set(scores) == set(text_metrics.METRICS)
    for name, value in scores.items():
        assert value == pytest.approx(CHALLENGE[name], abs=TOLERANCE[name]), name


def test_nist_equals_nltk_with_one_reference():
    # With one reference, mteval's clipping and reference length are nltk's best-reference ones.
    from nltk.translate.nist_score import corpus_nist
    hypotheses = ["the the pub is near the river , it is cheap .", "a cafe in the centre",
                  "Loch Fyne serves French food and is family friendly"]
    references = ["the pub near the river is cheap .", "there is a cafe in the city centre .",
                  "Loch Fyne is a family friendly restaurant serving French food ."]
    expected = corpus_nist([[mteval_tokens(r)] for r in references],
                           [mteval_tokens(h) for h in hypotheses], n=5)
    assert nist(hypotheses, [[r] for r in references]) == pytest.approx(expected, rel=1e-12)


def test_nist_clips_against_all_references_and_pays_the_length_penalty():
    # info: #words = 4 (refs "a b", "c d"); every unigram info log2(4/1) = 2, bigram log2(1/1) = 0
    hypotheses, references = ["a c"], [["a b", "c d"]]
    assert nist(hypotheses, references) == pytest.approx(2.0 * 2 / 2)  # both unigrams clip in
    # one word where references average 2: ratio 1/2, penalty exp(β log² ½), β = log ½ / log² 1.5
    beta = math.log(0.5) / math.log(1.5) ** 2
    assert nist(["a"], references) == pytest.approx(2.0 * math.exp(beta * math.log(0.5) ** 2))


@needs_java
def test_rouge_l_takes_the_best_precision_and_the_best_recall_over_references():
    # LCS with "blue serves coffee near here" = 3 (P 3/4, R 3/5), with "spice coffee" = 2
    # (P 2/4, R 1): P = 3/4 and R = 1 from different references, β = 1.2.
    p, r, b2 = 3 / 4, 1.0, 1.2 ** 2
    got = coco_scores(["blue spice serves coffee"],
                      [["blue serves coffee near here", "spice coffee"]], metrics=["rouge_l"])
    assert got == {"rouge_l": pytest.approx(100 * (1 + b2) * p * r / (r + b2 * p))}


@needs_java
def test_cider_by_its_formula():
    # Two record sets, every n-gram in one set's references: idf = log 2 for all, so the tf-idf
    # vectors are counts × log 2 and the cosines those of counts. "riverside cafe" equals its
    # reference: cosine 1 for n = 1, 2 and 0 for n = 3, 4 (no such n-grams). "the cheap" against
    # "the cheap pub": 2/√6 (unigrams), 1/√2 (bigrams), length gap 1 → exp(−1 / (2·6²)).
    first = math.exp(-1 / 72) * (2 / math.sqrt(6) + 1 / math.sqrt(2)) / 4 * 10
    second = (1 + 1) / 4 * 10
    got = coco_scores(["the cheap", "riverside cafe"], [["the cheap pub"], ["riverside cafe"]],
                      metrics=["cider"])
    assert got == {"cider": pytest.approx((first + second) / 2)}


@pytest.mark.slow  # two Meteor 1.5 starts (it loads its paraphrase table): over 10 s loaded
@needs_java
def test_meteor_by_its_formula_and_its_maximum():
    # Every word matches exactly (P = R = 1) in 3 chunks of 5 matches ("blue spice" | "is" |
    # "a pub"): Meteor 1.5 English, γ = 0.6, β = 0.2 (Denkowski & Lavie 2014), score
    # 1 − γ (3/5)^β. Only the second reference matches.
    got = coco_scores(["blue spice is a pub"], [["the vaults", "a pub is blue spice"]],
                      metrics=["meteor"])
    assert got == {"meteor": pytest.approx(100 * (1 - 0.6 * (3 / 5) ** 0.2))}
    # a hypothesis equal to one of its references (no fragmentation): the maximum, 100
    assert challenge_scores(HYPOTHESES[:2], [[REFERENCES[0][0], HYPOTHESES[0]],
                                             REFERENCES[1] + [HYPOTHESES[1]]])["meteor"] == (
        pytest.approx(100.0))


@needs_java
def test_a_hypothesis_equal_to_any_one_reference_scores_the_maximum():
    hypotheses = ["Blue Spice is a pub.", "The Eagle serves cheap English food."]
    references = [["The Vaults is a cafe.", "Blue Spice is a pub."],
                  ["Near the river.", "It is cheap.", "The Eagle serves cheap English food."]]
    bleu = text_metrics.multi_reference_bleu(hypotheses, references, tokenized=False,
                                             lowercase=True)
    assert bleu == pytest.approx(100.0)
    assert coco_scores(hypotheses, references, metrics=["rouge_l"]) == {
        "rouge_l": pytest.approx(100.0)}


@pytest.mark.parametrize("hypotheses, references, message", [
    ([], [], "no hypotheses"),
    (["a"], [["a"], ["b"]], "1 hypotheses but 2 reference sets"),
    (["a", "b"], [["a"], []], "reference set 1 is empty"),
])
def test_bad_input_is_named(hypotheses, references, message):
    with pytest.raises(ValueError, match=message):
        challenge_scores(hypotheses, references)


def test_without_java_only_bleu_and_nist_with_a_warning(monkeypatch):
    monkeypatch.setattr(text_metrics.shutil, "which", lambda name: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = challenge_scores(["a b c"], [["a b c"]])
    assert set(scores) == {"bleu", "nist"}
    assert any("no `java` is on PATH" in str(w.message) for w in caught)
