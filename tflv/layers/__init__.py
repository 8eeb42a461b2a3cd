"""Keras 3 layers: encoders, decoders, heads and the models' parameter layers, returning tensors
(distribution parameters).

Every layer is registered serializable (`keras.saving.register_keras_serializable(package="tflv")`)
when its module is imported, and `import tflv.layers` imports them all, so a `.keras` file that
uses any of them reloads after `import tflv.layers` (`__all__` lists the layers and helpers).

Example:
>>> import keras, tflv.layers
>>> tokens = keras.Input((6,), dtype="int32")
>>> logits = tflv.layers.RNNDecoder(vocab_size=20, embed_dim=8, hidden_dim=8)(tokens)
"""
from tflv.layers.attention import Attention, soft_context
from tflv.layers.blocked_hmm_parameters import BlockedNeuralHMM
from tflv.layers.cnn_decoder import CNNDecoder
from tflv.layers.decoders import RNNDecoder
from tflv.layers.encoders import BagOfWordsEncoder, RNNEncoder, WordDropout
from tflv.layers.heads import (AutoregressiveNetwork, BaselineHead, CategoricalHead, GaussianHead,
                               PlanarFlowHead, VMFHead, gaussian, von_mises_fisher)
from tflv.layers.hmm_parameterizations import HMMLogits, NeuralHMMLogits, ResidualMLP
from tflv.layers.latent import GaussianLatent
from tflv.layers.lstm import LSTM
from tflv.layers.mixture_of_softmaxes import MixtureOfSoftmaxes, MoSDecoder
from tflv.layers.semi_markov import SemiMarkov
from tflv.layers.structured import ForwardAlgorithm, MeanField
from tflv.layers.topics import NormalizedGaussianHead, TopicDecoder
from tflv.layers.training_step import TrainingStep

__all__ = [
    "Attention", "AutoregressiveNetwork", "BagOfWordsEncoder", "BaselineHead", "BlockedNeuralHMM",
    "CNNDecoder", "CategoricalHead", "ForwardAlgorithm", "GaussianHead", "GaussianLatent",
    "HMMLogits", "LSTM", "MeanField", "MixtureOfSoftmaxes", "MoSDecoder", "NeuralHMMLogits",
    "NormalizedGaussianHead", "PlanarFlowHead", "RNNDecoder", "RNNEncoder", "ResidualMLP",
    "SemiMarkov", "TopicDecoder", "TrainingStep", "VMFHead", "WordDropout", "gaussian",
    "soft_context", "von_mises_fisher",
]
