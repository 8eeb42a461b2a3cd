"""tflv: deep latent-variable models of natural language in TensorFlow, Keras 3 and TFP.

A library for the models and inference methods of Kim, Wiseman & Rush (2018), "Deep
Latent-Variable Models of Natural Language", arXiv:1812.06834.

  data → layers → distributions → vi → models → trainers
"""

__version__ = "0.1.0"
