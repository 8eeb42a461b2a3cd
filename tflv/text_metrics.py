"""The E2E NLG challenge's five metrics: generations scored against all references of each input.

`challenge_scores(hypotheses, reference_sets)` returns BLEU, NIST, METEOR, ROUGE-L and CIDEr as
the challenge's script computes them (Dušek, Novikova & Rieser 2020; `tuetschek/e2e-metrics`,
`measure_scores.py`), on the scales of Wiseman, Shieber & Rush (2018, Table 1): BLEU, METEOR
and ROUGE-L × 100, NIST and CIDEr as they are. Each hypothesis has a set of references
(E2E: every human reference of the same meaning representation); none needs the same count.

Two tokenisations, as in the challenge:

- **BLEU, NIST** (the challenge runs NIST's `mteval-v13a`): lower-cased, mteval's 13a
  tokeniser (sacrebleu's `13a`, Post 2018). BLEU is sacrebleu's multi-reference corpus BLEU
  (`tflv.bleu.multi_reference_bleu`, equal to mteval's). NIST (Doddington 2002) is computed
  here as mteval defines it for several references, with n ≤ 5:

      Info(w_1..w_n) = log₂ (#(w_1..w_{n-1}) / #(w_1..w_n))   (counts over every reference;
                                                              #() = all reference words)
      NIST = Σ_{n=1}^{5} [Σ_hyp Σ_{n-grams g} Info(g) · min(c_hyp(g), max_ref c_ref(g))
                          / Σ_hyp #n-grams] · exp(β log² min(1, L_hyp / L_ref))

  with L_hyp the hypothesis words, L_ref = (number of hypotheses) × (mean length of all
  references; mteval's choice, not the mean of each set's mean) and β = log 0.5 / log² 1.5
  (the penalty is ½ at 2/3 of the length). nltk's `corpus_nist` clips against the single
  best reference of each hypothesis instead, which differs when there are several.
- **METEOR, ROUGE-L, CIDEr** (the challenge runs the MS-COCO caption scripts, here
  pycocoevalcap 1.2): Stanford CoreNLP 3.4.1's PTBTokenizer, lower-cased
  (`-preserveLines -lowerCase`), then the punctuation tokens ``. , ; : ! ? ' '' ` `` - --
  ... -LRB- -RRB- -LCB- -RCB-`` dropped (`ptb_tokenize`). METEOR is Meteor 1.5 (`-l en
  -norm`), its statistics summed over the corpus (Denkowski & Lavie 2014). ROUGE-L (Lin
  2004) of one hypothesis takes the largest LCS precision P and the largest LCS recall R over
  its references, F = (1 + β²) P R / (R + β² P) with β = 1.2, averaged over hypotheses.
  CIDEr is MS-COCO's CIDEr-D (Vedantam et al. 2015): TF-IDF n-gram vectors (n ≤ 4, document
  frequency over the corpus's reference sets), clipped cosine similarity to each reference
  times exp(−Δlen² / 2σ²) with σ = 6, averaged over n and references, × 10.

The three COCO metrics run Java (PTBTokenizer and Meteor ship as jars inside pycocoevalcap).
Without a `java` on PATH, or without pycocoevalcap, they are left out of the result with a
warning saying so (`coco_metrics_unavailable`); BLEU and NIST are always computed.

>>> hypotheses = ["The cat sat on the mat.", "A dog ran."]
>>> reference_sets = [["the cat sat on a mat .", "A cat sat on the mat."], ["a dog ran ."]]
>>> round(nist(hypotheses, reference_sets), 4)
3.6383

#### References
- Doddington (2002). Automatic Evaluation of Machine Translation Quality Using N-gram
  Co-Occurrence Statistics. HLT.
- Lin (2004). ROUGE: A Package for Automatic Evaluation of Summaries. ACL workshop.
- Vedantam, Zitnick & Parikh (2015). CIDEr: Consensus-based Image Description Evaluation. CVPR.
- Denkowski & Lavie (2014). Meteor Universal: Language Specific Translation Evaluation for Any
  Target Language. WMT.
- Dušek, Novikova & Rieser (2020). Evaluating the State-of-the-Art of End-to-End Natural
  Language Generation: The E2E NLG Challenge. Computer Speech & Language.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import warnings
from collections import Counter
from typing import Sequence

from tflv.bleu import multi_reference_bleu

METRICS = ("bleu", "nist", "meteor", "rouge_l", "cider")
PTB_PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?",
                             "!", ",", ":", "-", "--", "...", ";"])


def _check(hypotheses: Sequence[str], reference_sets: Sequence[Sequence[str]]) -> None:
    if len(hypotheses) != len(reference_sets):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(reference_sets)} reference "
                         "sets: each hypothesis needs its set of references")
    if not hypotheses:
        raise ValueError("no hypotheses: the metrics of an empty corpus are undefined")
    empty = [i for i, refs in enumerate(reference_sets) if not refs]
    if empty:
        raise ValueError(f"reference set {empty[0]} is empty: each hypothesis needs at least "
                         "one reference")


def mteval_tokens(text: str) -> list[str]:
    """`text` lower-cased and split by mteval's 13a tokeniser (what BLEU and NIST compare).

    >>> mteval_tokens("The Eagle, near Café Brazil.")
    ['the', 'eagle', ',', 'near', 'café', 'brazil', '.']
    """
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    return Tokenizer13a()(text.lower()).split()


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def nist(hypotheses: Sequence[str], reference_sets: Sequence[Sequence[str]],
         max_order: int = 5) -> float:
    """Corpus NIST of `hypotheses` against all references of each, as mteval-v13a computes it
    (module docstring; text through `mteval_tokens`)."""
    _check(hypotheses, reference_sets)
    hyps = [mteval_tokens(h) for h in hypotheses]
    refs = [[mteval_tokens(r) for r in rs] for rs in reference_sets]
    counts, total_words = Counter(), 0
    for words in (w for rs in refs for w in rs):
        total_words += len(words)
        for n in range(1, max_order + 1):
            counts.update(_ngrams(words, n))
    info = {g: math.log2((counts[g[:-1]] if len(g) > 1 else total_words) / c)
            for g, c in counts.items()}
    gained, hyp_ngrams = [0.0] * max_order, [0] * max_order
    # mteval: the reference words over the mean number of references per hypothesis
    ref_length = total_words * len(refs) / sum(len(rs) for rs in refs)
    for words, rs in zip(hyps, refs):
        for n in range(1, max_order + 1):
            most = Counter()
            for r in rs:
                most |= _ngrams(r, n)  # per n-gram, its largest count in one reference
            found = _ngrams(words, n)
            hyp_ngrams[n - 1] += sum(found.values())
            gained[n - 1] += sum(info[g] * min(c, most[g]) for g, c in found.items() if g in most)
    score = sum(g / max(c, 1) for g, c in zip(gained, hyp_ngrams))
    ratio = sum(len(w) for w in hyps) / ref_length if ref_length else 0.0
    if ratio <= 0.0:
        return 0.0
    beta = math.log(0.5) / math.log(1.5) ** 2
    return score * math.exp(beta * math.log(min(ratio, 1.0)) ** 2)


def coco_metrics_unavailable() -> str | None:
    """Why METEOR, ROUGE-L and CIDEr cannot run here (no Java, no pycocoevalcap), or None."""
    try:
        import pycocoevalcap.meteor.meteor  # noqa: F401
    except ImportError:
        return ("METEOR, ROUGE-L and CIDEr need pycocoevalcap (pip install "
                "'pycocoevalcap==1.2', or tflv's `e2e` extra)")
    if shutil.which("java") is None:
        return ("METEOR, ROUGE-L and CIDEr run pycocoevalcap's Java tools (Stanford "
                "PTBTokenizer, Meteor 1.5) and no `java` is on PATH (Debian: apt-get install "
                "default-jre-headless)")
    return None


def ptb_tokenize(lines: Sequence[str]) -> list[str]:
    """`lines` through Stanford CoreNLP 3.4.1's PTBTokenizer (lower-cased, one output line per
    input line, as pycocoevalcap's tokenizer runs it), the `PTB_PUNCTUATION` tokens dropped."""
    import pycocoevalcap.tokenizer.ptbtokenizer as ptb
    jar = os.path.join(os.path.dirname(ptb.__file__), ptb.STANFORD_CORENLP_3_4_1_JAR)
    text = "\n".join(" ".join(line.split()) for line in lines) + "\n"
    out = subprocess.run(
        ["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
         "-lowerCase", "-encoding", "utf-8"], input=text.encode("utf-8"), capture_output=True,
        check=True).stdout.decode("utf-8").splitlines()
    if len(out) != len(lines):
        raise RuntimeError(f"PTBTokenizer gave {len(out)} lines for {len(lines)}")
    return [" ".join(w for w in line.split() if w not in PTB_PUNCTUATION) for line in out]


COCO_METRICS = ("meteor", "rouge_l", "cider")


def coco_scores(hypotheses: Sequence[str], reference_sets: Sequence[Sequence[str]],
                metrics: Sequence[str] = COCO_METRICS) -> dict[str, float]:
    """`metrics` among METEOR, ROUGE-L (both × 100) and CIDEr, pycocoevalcap 1.2's scorers on
    `ptb_tokenize`d text as the challenge's script runs them (module docstring). Needs Java
    (`coco_metrics_unavailable`); METEOR starts Meteor 1.5 (seconds), the others do not."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    _check(hypotheses, reference_sets)
    unknown = sorted(set(metrics) - set(COCO_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: choose among {', '.join(COCO_METRICS)}")
    tokens = ptb_tokenize(list(hypotheses) + [r for refs in reference_sets for r in refs])
    res, gts, k = {}, {}, len(hypotheses)
    for i, refs in enumerate(reference_sets):
        res[i] = [tokens[i]]
        gts[i], k = tokens[k:k + len(refs)], k + len(refs)
    scores = {}
    if "meteor" in metrics:
        from pycocoevalcap.meteor.meteor import Meteor
        meteor = Meteor()
        try:
            scores["meteor"] = 100.0 * float(meteor.compute_score(gts, res)[0])
        finally:
            del meteor  # its __del__ stops the Java process
    if "rouge_l" in metrics:
        scores["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    if "cider" in metrics:
        scores["cider"] = float(Cider().compute_score(gts, res)[0])
    return scores


def challenge_scores(hypotheses: Sequence[str],
                     reference_sets: Sequence[Sequence[str]]) -> dict[str, float]:
    """`{bleu, nist, meteor, rouge_l, cider}` of `hypotheses` (one string each) against their
    reference sets (module docstring); the COCO three are left out, with a warning, where
    `coco_metrics_unavailable` says why."""
    _check(hypotheses, reference_sets)
    scores = {"bleu": multi_reference_bleu(hypotheses, reference_sets, tokenized=False,
                                           lowercase=True),
              "nist": nist(hypotheses, reference_sets)}
    reason = coco_metrics_unavailable()
    if reason:
        warnings.warn(f"{reason}: only BLEU and NIST are reported", RuntimeWarning)
    else:
        scores.update(coco_scores(hypotheses, reference_sets))
    return scores


def reference_set_scores(corpus, split: str, batch_size: int, limit: int,
                         realise) -> dict[str, float]:
    """`challenge_scores` of a model's outputs for each distinct input of a corpus split
    against all its references: `realise(source, pairs)` maps a batch of
    `corpus.reference_set_batches(split, batch_size, limit)` (source ids int32 [b, S], their
    (text, references) pairs) to b tokenised output texts, which `corpus.detokenize` writes
    in the references' conventions before scoring."""
    hypotheses, references = [], []
    for source, pairs in corpus.reference_set_batches(split, batch_size, limit):
        hypotheses += [corpus.detokenize(text) for text in realise(source, pairs)]
        references += [r for _, r in pairs]
    return challenge_scores(hypotheses, references)
