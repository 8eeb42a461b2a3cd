"""Structured distributions, TFP-compatible (batch shapes, log_prob, sample, entropy)."""
from tflv.distributions.factorial_hmm import FactorialHMM, MeanFieldPosterior
from tflv.distributions.hmm import HMM, Posterior
from tflv.distributions.vmf import VonMisesFisherFixedConcentration  # noqa: E402,F401
from tflv.distributions.semi_markov import (  # noqa: E402,F401
    Segmentation, SemiMarkovChain, SemiMarkovPosterior, segments_keeping_spans)
from tflv.distributions.blocked_hmm import BlockedHMM, BlockedPosterior, WordBlocks  # noqa: E402,F401
