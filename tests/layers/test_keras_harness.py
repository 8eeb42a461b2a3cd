"""Every public tflv layer through Keras's own layer harness, `run_layer_test` of
`keras.src.testing.TestCase`: serialization, a symbolic and an eager call, a compiled training
step, and (for layers whose inputs include floats) the same layer under a `mixed_float16` dtype
policy, whose outputs must have the dtypes of `compute_output_spec` and whose weights stay
float32. The trainable-weight counts are written out by hand from each layer's definition, and
checked after a bare `build()` as well as after a call.

Where the harness cannot express a call (a keyword tensor argument such as a decoder's `z`), a
test says so and checks the same properties by hand (`check_mixed_precision_by_hand`).
"""
import keras
import numpy as np
import tensorflow as tf
from keras.src.testing import TestCase

import tflv.layers as L

RNG = np.random.default_rng(0)
TOKENS = np.array([[2, 5, 7, 4], [2, 1, 3, 0]], np.int32)
FEATURES = RNG.normal(size=(2, 5)).astype(np.float32)


def lstm_weights(num_layers=1):
    return 3 * num_layers  # kernel, recurrent kernel, bias


class HarnessTest(TestCase):

    def harness(self, layer_cls, init_kwargs, input_data, trainable, build_shape=None,
                seed_generators=None, losses=None, mixed_precision=True, training=True,
                non_trainable=0):
        """`run_layer_test` with `trainable` weights and `non_trainable` ones (seed generators:
        counted by the harness from a called layer unless given, e.g. one per Keras LSTM)."""
        self.run_layer_test(
            layer_cls, init_kwargs, input_data=input_data,
            expected_num_trainable_weights=trainable,
            expected_num_non_trainable_weights=non_trainable,
            expected_num_seed_generators=seed_generators, expected_num_losses=losses,
            run_training_check=training, run_mixed_precision_check=mixed_precision)
        if build_shape is not None:  # build() alone creates every weight
            layer = layer_cls(**init_kwargs)
            layer.build(build_shape)
            self.assertTrue(layer.built)
            self.assertLen(layer.trainable_weights, trainable)

    def test_heads(self):
        self.harness(L.GaussianHead, dict(latent_dim=3), FEATURES, 2, build_shape=(2, 5))
        self.harness(L.VMFHead, dict(latent_dim=3, concentration=10.0), FEATURES, 2,
                     build_shape=(2, 5))
        self.harness(L.CategoricalHead, dict(num_classes=4), FEATURES, 2, build_shape=(2, 5))
        self.harness(L.BaselineHead, dict(hidden_units=[4, 3]), FEATURES, 6, build_shape=(2, 5))
        self.harness(L.PlanarFlowHead, dict(latent_dim=3, num_flows=2), FEATURES, 2,
                     build_shape=(2, 5))

    def test_autoregressive_network(self):
        z = RNG.normal(size=(2, 4)).astype(np.float32)
        # A masked layer (kernel, bias) per hidden layer and for the shift, and the log-scale
        # output (kernel, bias): 2 (L + 1) + 2 ...
        self.harness(L.AutoregressiveNetwork, dict(event_size=4, hidden_units=[6]), z, 6,
                     build_shape=(2, 4))
        # ... and one unmasked context kernel per hidden layer: 2 (L + 1) + 2 + L.
        self.harness(L.AutoregressiveNetwork,
                     dict(event_size=4, hidden_units=[6, 5], conditional=True), (z, FEATURES),
                     10, build_shape=((2, 4), (2, 5)))

    def test_gaussian_latent(self):
        scale = RNG.uniform(0.5, 1.5, size=(2, 5)).astype(np.float32)
        # No weights; a seed generator for the noise; the KL term as its one loss.
        self.harness(L.GaussianLatent, dict(seed=1), (FEATURES, scale), 0, seed_generators=1,
                     losses=1, training=False)

    def test_lstm(self):
        sequences = RNG.normal(size=(2, 4, 5)).astype(np.float32)
        self.harness(L.LSTM, dict(units=3, return_sequences=True), sequences, lstm_weights(),
                     build_shape=(2, 4, 5), seed_generators=1)
        self.harness(L.LSTM, dict(units=3, go_backwards=True), sequences, lstm_weights(),
                     build_shape=(2, 4, 5), seed_generators=1)

    def test_encoders(self):
        self.harness(L.RNNEncoder, dict(vocab_size=9, embed_dim=4, hidden_dim=3), TOKENS,
                     1 + lstm_weights(), build_shape=(2, 4), mixed_precision=False)
        self.harness(L.RNNEncoder, dict(vocab_size=9, embed_dim=4, hidden_dim=3,
                                        bidirectional=True, return_states=True), TOKENS,
                     1 + 2 * lstm_weights(), build_shape=(2, 4), mixed_precision=False)
        self.harness(L.BagOfWordsEncoder, dict(hidden_units=[6, 5]),
                     RNG.poisson(1.0, size=(2, 9)).astype(np.float32), 4, build_shape=(2, 9))
        # Integer inputs: no float computation for the mixed-precision check to see.
        self.harness(L.WordDropout, dict(rate=0.3, seed=1), TOKENS, 0, seed_generators=1,
                     mixed_precision=False)

    def test_hmm_parameters(self):
        # Integer tokens (or kept state ids): no float computation for the mixed-precision check.
        # Residual MLP: hidden and output Dense, kernel and bias each.
        self.harness(L.ResidualMLP, dict(hidden_dim=6), FEATURES, 4, build_shape=(2, 5))
        # Free initial, transition and emission logits (of 2 chains).
        self.harness(L.HMMLogits, dict(num_states=3, vocab_size=9, num_chains=2), TOKENS, 3,
                     build_shape=(2, 4), mixed_precision=False)
        # State, next-state and output-word embeddings, next-state and word biases, the start
        # query (6) and two residual MLPs (2 × 4) ...
        neural = dict(num_states=3, vocab_size=9, embed_dim=4, hidden_dim=5)
        self.harness(L.NeuralHMMLogits, neural, TOKENS, 14, build_shape=(2, 4),
                     mixed_precision=False)
        # ... and with "lstm" transitions the input embeddings, the LSTM and the context Dense.
        self.harness(L.NeuralHMMLogits, dict(neural, transitions="lstm"), TOKENS,
                     14 + 1 + lstm_weights() + 2, build_shape=(2, 4), mixed_precision=False)
        # State, next-state and word embeddings, word bias, start query (5), two residual MLPs.
        self.harness(L.BlockedNeuralHMM, dict(num_states=4, word_blocks=[0, 1, 0, 1, 1],
                                              num_blocks=2, embed_dim=3),
                     np.array([[0, 1], [2, 3]], np.int32), 5 + 2 * 4, mixed_precision=False)

    def test_topic_layers(self):
        theta = tf.nn.softmax(FEATURES).numpy()
        # Factored topic logits t, vᵀ and the bias b; the mixture's free topic logits alone.
        self.harness(L.TopicDecoder, dict(vocab_size=9, embed_dim=3), theta, 3, build_shape=(2, 5))
        self.harness(L.TopicDecoder, dict(vocab_size=9, mixture=True), theta, 1,
                     build_shape=(2, 5))
        # Batch-normalised logits: the topic logits and BN's shift; BN's two moving moments.
        self.harness(L.TopicDecoder, dict(vocab_size=9, batch_norm=True), theta, 2,
                     non_trainable=2, build_shape=(2, 5))
        # Dense (kernel, bias) and the shifts of two BNs; their moving moments (2 × 2).
        self.harness(L.NormalizedGaussianHead, dict(latent_dim=3), FEATURES, 4, non_trainable=4,
                     build_shape=(2, 5))

    def test_training_step(self):
        # The int64 step counter, not trained; the layer passes its input through.
        self.harness(L.TrainingStep, {}, FEATURES, 0, non_trainable=1, training=False)

    def test_attention(self):
        inputs = (RNG.normal(size=(2, 3, 4)).astype(np.float32),
                  RNG.normal(size=(2, 5, 6)).astype(np.float32),
                  np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.float32))
        shapes = ((2, 3, 4), (2, 5, 6), (2, 5))
        # query (no bias), memory (kernel, bias), vector (no bias)
        self.harness(L.Attention, dict(units=4), inputs, 4, build_shape=shapes)
        self.harness(L.Attention, dict(score="bilinear"), inputs, 1, build_shape=shapes)

    def test_mixture_of_softmaxes(self):
        # prior, latent, projection: kernel and bias each
        self.harness(L.MixtureOfSoftmaxes, dict(vocab_size=9, num_softmaxes=3),
                     RNG.normal(size=(2, 4, 5)).astype(np.float32), 6, build_shape=(2, 4, 5))

    def test_decoders_without_latent(self):
        # Integer inputs: the harness's mixed-precision check does not apply (checked by hand in
        # test_decoders_with_latent_by_hand).
        rnn = dict(vocab_size=9, embed_dim=4, hidden_dim=6)
        self.harness(L.RNNDecoder, rnn, TOKENS, 1 + lstm_weights() + 2, build_shape=(2, 4),
                     mixed_precision=False)
        self.harness(L.RNNDecoder, dict(rnn, num_layers=2), TOKENS, 1 + lstm_weights(2) + 2,
                     build_shape=(2, 4), mixed_precision=False)
        self.harness(L.RNNDecoder, dict(vocab_size=9, embed_dim=6, hidden_dim=6,
                                        tie_embeddings=True), TOKENS, 1 + lstm_weights() + 1,
                     build_shape=(2, 4), mixed_precision=False)
        self.harness(L.MoSDecoder, dict(rnn, num_softmaxes=2), TOKENS, 1 + lstm_weights() + 6,
                     build_shape=(2, 4), mixed_precision=False)
        # embedding, input projection, (conv, mix) per block, output projection: 2 each but 1
        self.harness(L.CNNDecoder, dict(vocab_size=9, embed_dim=4, hidden_dim=6, kernel_size=2,
                                        dilations=[1, 2]), TOKENS, 1 + 2 + 2 * 4 + 2,
                     build_shape=(2, 4), mixed_precision=False)

    def test_decoders_with_latent_by_hand(self):
        """`z` is a keyword tensor argument, which `run_layer_test` cannot pass, so by hand:
        `build(inputs_shape, z_shape)` creates every weight a call with `z` creates (same shapes,
        same order); under a per-layer `mixed_float16` policy the decoder computes in float16
        (sublayers included; the MoS decoder's softmaxes in float32) with float32 weights, and
        matches the float32 decoder with the same
        weights to float16 precision."""
        z = RNG.normal(size=(2, 3)).astype(np.float32)
        cases = [
            (L.RNNDecoder, dict(vocab_size=9, embed_dim=4, hidden_dim=6, skip_connections=True)),
            (L.RNNDecoder, dict(vocab_size=9, embed_dim=6, hidden_dim=6, tie_embeddings=True)),
            (L.MoSDecoder, dict(vocab_size=9, embed_dim=4, hidden_dim=6, num_softmaxes=2)),
            (L.CNNDecoder, dict(vocab_size=9, embed_dim=4, hidden_dim=6, kernel_size=2,
                                dilations=[1, 2], skip_connections=True)),
        ]
        for cls, kwargs in cases:
            called = cls(**kwargs)
            reference = called(TOKENS, z=z)
            built = cls(**kwargs)
            built.build((2, 4), z_shape=(2, 3))
            self.assertEqual([tuple(w.shape) for w in built.trainable_weights],
                             [tuple(w.shape) for w in called.trainable_weights], cls.__name__)
            mixed = cls(**kwargs, dtype="mixed_float16")
            mixed.build((2, 4), z_shape=(2, 3))
            mixed.set_weights(called.get_weights())
            output = mixed(TOKENS, z=z)
            # Logits in float16; the MoS decoder's log-probabilities (softmaxes, logsumexp) in
            # float32, as every log-probability of tflv under mixed precision.
            expected = tf.float32 if cls is L.MoSDecoder else tf.float16
            self.assertEqual(output.dtype, expected, cls.__name__)
            self.assertTrue(all(w.dtype == "float32" for w in mixed.weights), cls.__name__)
            for layer in mixed._flatten_layers(include_self=False):
                self.assertEqual(layer.compute_dtype, "float16", f"{cls.__name__}: {layer.name}")
            np.testing.assert_allclose(np.asarray(output, np.float32), reference, rtol=2e-2,
                                       atol=2e-2, err_msg=cls.__name__)
