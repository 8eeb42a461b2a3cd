"""Models: `keras.Model` subclasses, one file per family, and the registry the trainer reads.

`MODELS` maps a model name (the trainer's model option) to its class. Each class follows the
contract in `tflv.models.base`.
"""
from tflv.models.base import LatentVariableModel, Objective
from tflv.models.config import ConfigError, ModelConfig
from tflv.models.hmm_lm import HMMLM
from tflv.models.hmm_taggers import FactorialHMMTagger, HMMTagger, NeuralHMMTagger
from tflv.models.latent_summary import LatentSummary
from tflv.models.lda import LatentDirichletAllocation
from tflv.models.mixture_lm import MixtureLM
from tflv.models.mos_lm import MoSLM
from tflv.models.neural_template import NeuralTemplate
from tflv.models.rnnlm import RNNLM
from tflv.models.sentence_vae import SentenceVAE
from tflv.models.seq2seq import CopyAttention, EncoderDecoder, LatentAttention
from tflv.models.topic_models import GSM, NVDM, ProdLDA

MODELS = {
    "rnnlm": RNNLM,
    "mixture_lm": MixtureLM,
    "sentence_vae": SentenceVAE,
    "seq2seq": EncoderDecoder,
    "latent_attention": LatentAttention,
    "copy_attention": CopyAttention,
    "mos_lm": MoSLM,
    "latent_summary": LatentSummary,
    "nvdm": NVDM,
    "gsm": GSM,
    "prodlda": ProdLDA,
    "lda": LatentDirichletAllocation,
    "hmm": HMMTagger,
    "neural_hmm": NeuralHMMTagger,
    "factorial_hmm": FactorialHMMTagger,
    "hmm_lm": HMMLM,
    "neural_template": NeuralTemplate,
}


def get_model_class(name: str):
    """The model class registered as `name`; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[name]
