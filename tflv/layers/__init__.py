"""Keras 3 layers: encoders and decoders that return tensors (distribution parameters).

Every layer is registered serializable (`keras.saving.register_keras_serializable(package="tflv")`).
"""
