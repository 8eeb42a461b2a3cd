"""Keras 3 layers: encoders and decoders that return tensors (distribution parameters).

Every layer is registered serializable (`keras.saving.register_keras_serializable(package="tflv")`).
"""
from tflv.layers.encoders import BagOfWordsEncoder, RNNEncoder, WordDropout  # noqa: E402,F401
from tflv.layers.heads import (  # noqa: E402,F401
    AutoregressiveNetwork, BaselineHead, CategoricalHead, GaussianHead, PlanarFlowHead, VMFHead,
    gaussian, von_mises_fisher)
from tflv.layers.latent import GaussianLatent  # noqa: E402,F401
from tflv.layers.decoders import RNNDecoder  # noqa: E402,F401
from tflv.layers.structured import ForwardAlgorithm, MeanField  # noqa: E402,F401
from tflv.layers.semi_markov import SemiMarkov  # noqa: E402,F401
