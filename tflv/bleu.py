"""Corpus BLEU (Papineni et al. 2002) with sacrebleu, on tokenized or detokenized text.

    BLEU = BP · exp(Σ_{n=1}^{4} ¼ log p_n),   BP = min(1, exp(1 − r / c)),

p_n the clipped n-gram precisions over the whole corpus, c the hypothesis and r the reference
length. tflv reports **tokenized** BLEU on Multi30k: hypotheses and references are the
lower-cased, Moses-tokenized `tok/` text, compared as they are (`tokenized=True`: sacrebleu's
`tokenize="none"`, the multi-bleu.perl convention of most Multi30k papers). With
`tokenized=False`, hypotheses must be detokenized, cased text and the references the raw
sentences; sacrebleu then applies its standard `13a` tokenisation (Post 2018), the comparable
signature.

#### References
- Papineni, Roukos, Ward & Zhu (2002). BLEU: a Method for Automatic Evaluation of Machine
  Translation. ACL.
- Post (2018). A Call for Clarity in Reporting BLEU Scores. WMT.
"""
from __future__ import annotations

from typing import Sequence

import sacrebleu


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str],
                tokenized: bool = True) -> float:
    """BLEU in [0, 100] of `hypotheses` against one reference each (see the module docstring)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references: BLEU "
                         "needs one reference per hypothesis")
    if not hypotheses:
        raise ValueError("BLEU of an empty corpus is undefined")
    result = sacrebleu.corpus_bleu(list(hypotheses), [list(references)],
                                   tokenize="none" if tokenized else "13a")
    return float(result.score)


def multi_reference_bleu(hypotheses: Sequence[str], reference_sets: Sequence[Sequence[str]],
                         tokenized: bool = True, lowercase: bool = False) -> float:
    """BLEU in [0, 100] of `hypotheses` against all references of each (data-to-text: E2E's
    several human references per record set); the clipped n-gram counts take, per n-gram, the
    largest count in any one reference, and r the reference length closest to each hypothesis'
    (sacrebleu; `tokenized` as in `corpus_bleu`; `lowercase` compares lower-cased text, as
    mteval-v13a does by default and the E2E challenge did, `tflv.text_metrics`).

    >>> round(multi_reference_bleu(["a b c d"], [["a b c d", "x y"]]), 1)
    100.0
    """
    if len(hypotheses) != len(reference_sets):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(reference_sets)} reference "
                         "sets: BLEU needs one set per hypothesis")
    if not hypotheses or any(not refs for refs in reference_sets):
        raise ValueError("multi-reference BLEU needs hypotheses and at least one reference each")
    most = max(len(refs) for refs in reference_sets)
    # sacrebleu takes reference streams; a set with fewer references is padded with None
    streams = [[refs[i] if i < len(refs) else None for refs in reference_sets]
               for i in range(most)]
    result = sacrebleu.corpus_bleu(list(hypotheses), streams, lowercase=lowercase,
                                   tokenize="none" if tokenized else "13a")
    return float(result.score)
