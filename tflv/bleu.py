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
