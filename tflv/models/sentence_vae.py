"""Model 2 of the tutorial: the sentence VAE (Bowman et al. 2016), with its collapse fixes.

Each sentence x = w_1 … w_n (one independent example) has a continuous code z ∈ R^D:

    z ~ p(z) = N(0, I),    x | z ~ Π_t p(w_t | w_<t, z)
                                  (an LSTM, or a dilated CNN, fed [e(w_{t−1}); z]),

and an LSTM encoder gives the amortized posterior q(z | x) = N(μ(x), diag σ²(x)). Training
maximizes the ELBO, E_q[log p(x | z)] − KL(q(z | x) || p(z)) ≤ log p(x), with one
reparameterized sample (`tflv.vi.elbo`, closed-form KL). A strong autoregressive decoder can
model x alone, so the optimum often has q(z | x) = p(z) and KL = 0: posterior collapse. Every fix
of the tutorial's section 6 is one config field (`SentenceVAE.Config`, the trainer's option of the same name):

- KL annealing (`kl_schedule`, `kl_warmup_steps`): β(t) · KL with β rising from 0 to 1
  (Bowman et al. 2016; cyclical: Fu et al. 2019), `tflv.vi.schedules`, t from `TrainingStep`.
- word dropout (`word_dropout`): decoder inputs replaced by `<unk>` with probability p
  (Bowman et al. 2016), `tflv.layers.encoders.WordDropout`.
- free bits (`free_bits`, `free_bits_per_dimension`): β · max(λ, E_batch KL)
  (Kingma et al. 2016).
- a von Mises–Fisher posterior (`latent="vmf"`): vMF(μ(x), κ) with a fixed κ and the uniform
  prior on S^{D−1}, whose KL is a constant > 0 (Xu & Durrett 2018).
- normalizing flows on q (`flow="iaf"|"planar"`): richer posteriors (Kingma et al. 2016; Rezende
  & Mohamed 2015); the KL is then a one-sample Monte Carlo estimate, log q(z) − log p(z).
- semi-amortized VI (`sa_vae_steps`): K differentiable gradient steps on the example's ELBO from
  the encoder's (μ, log σ) (Kim et al. 2018), `tflv.vi.semi_amortized.refine`.
- skip connections (`skip_connections`): z feeds every decoder layer (Dieng et al. 2018).
- a dilated CNN decoder (`decoder="cnn"`) with a limited receptive field (Yang et al. 2017).

Evaluation reports, per sentence, the ELBO, its reconstruction and KL terms, and the
importance-sampled estimate of log p(x) with `iw_samples` proposals from q
(`tflv.vi.importance_sampled_log_marginal`, Burda et al. 2016), from which the per-token NLL and
perplexity; `evaluate_corpus` adds the active units (Burda et al. 2016) and the mutual
information I_q(x; z) (He et al. 2019) over the split.

#### References
- Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016). Generating Sentences from a
  Continuous Space.
- Kingma & Welling (2014). Auto-Encoding Variational Bayes.
- Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016). Improved Variational Inference
  with Inverse Autoregressive Flow.
- Rezende & Mohamed (2015). Variational Inference with Normalizing Flows.
- Xu & Durrett (2018). Spherical Latent Spaces for Stable Variational Autoencoders.
- Kim, Wiseman, Miller, Sontag & Rush (2018). Semi-Amortized Variational Autoencoders.
- Yang, Hu, Salakhutdinov & Berg-Kirkpatrick (2017). Improved Variational Autoencoders for Text
  Modeling using Dilated Convolutions.
- Dieng, Kim, Rush & Blei (2018). Avoiding Latent Variable Collapse with Generative Skip Models.
- Fu, Li, Liu, Gao, Celikyilmaz & Carin (2019). Cyclical Annealing Schedule.
- Burda, Grosse & Salakhutdinov (2016). Importance Weighted Autoencoders.
- He, Spokoyny, Neubig & Berg-Kirkpatrick (2019). Lagging Inference Networks and Posterior
  Collapse in Variational Autoencoders.
- Kim, Wiseman & Rush (2018). A Tutorial on Deep Latent Variable Models of Natural Language,
  sections 4.2 (Model 2) and 6 (posterior collapse).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tflv import metrics
from tflv.layers.cnn_decoder import CNNDecoder
from tflv.layers.decoders import RNNDecoder
from tflv.layers.encoders import RNNEncoder, WordDropout
from tflv.layers.heads import (AutoregressiveNetwork, GaussianHead, PlanarFlowHead, VMFHead,
                               gaussian, von_mises_fisher)
from tflv.layers.training_step import TrainingStep
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective, full_precision
from tflv.models.rnnlm import lm_metrics, token_nll
from tflv.vi.bounds import importance_sampled_log_marginal, in_chunks
from tflv.vi.elbo import elbo
from tflv.vi.flows import autoregressive_flow, planar_flow
from tflv.vi.schedules import KL_SCHEDULES, kl_weight
from tflv.vi.semi_amortized import refine

tfd = tfp.distributions
tfb = tfp.bijectors

LATENTS = ("gaussian", "vmf")
FLOWS = ("none", "iaf", "planar")
DECODERS = ("rnn", "cnn")
DEFAULT_KL_WARMUP_STEPS = 10000  # β(t) reaches 1 after this many steps unless told
# Salts of the stateless seeds drawn at one training step (see `TrainingStep.seed`).
_SAMPLE_SALT, _IW_SALT, _REFINE_SALT = 1, 2, 100


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@keras.saving.register_keras_serializable(package="tflv")
class SentenceVAE(LatentVariableModel):
    """LSTM encoder → q(z | x) → LSTM (or dilated CNN) decoder p(x | z) (see the module doc).

    Args:
      vocab_size: V.
      embed_dim, hidden_dim: encoder and decoder embedding and state sizes.
      num_layers: decoder LSTM layers.
      dropout: decoder dropout.
      latent_dim: D.
      latent: `"gaussian"` (prior N(0, I)) or `"vmf"` (prior uniform on the sphere).
      vmf_concentration: the fixed κ of the vMF posterior.
      flow: `"none"`, `"iaf"` (conditional IAF, Kingma et al. 2016) or `"planar"`.
      num_flows: flow layers.
      decoder: `"rnn"` or `"cnn"` (`CNNDecoder`, kernel 3).
      cnn_dilations: the CNN decoder's dilations.
      skip_connections: z feeds every decoder layer and the output (Dieng et al. 2018).
      word_dropout: probability of replacing a decoder input word by `<unk>` in training.
      kl_schedule, kl_warmup_steps: β(t) (see `tflv.vi.schedules.kl_weight`).
      free_bits: λ nats (0: off); `free_bits_per_dimension` clamps each dimension's KL.
      sa_vae_steps, sa_vae_step_size: K refinement steps of size α (0: amortized VI).
      sa_vae_max_grad_norm: each example's refinement gradient is clipped to this norm
        (Kim et al. 2018 use 5); 0 leaves it unclipped.
      iw_samples: proposals for the importance-sampled log p(x) at evaluation (0: ELBO only).
      iw_chunk: proposals decoded together (folded into the batch) at evaluation.

    Batch (form `sentences`): `inputs` int32 [B,T] (<bos> w), `targets` int32 [B,T] (w <eos>),
    `mask` [B,T].
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """`SentenceVAE`'s hyperparameters (`SentenceVAE.from_corpus(corpus, config)`)."""
        embed_dim: int = cfg.EMBED_DIM()
        hidden_dim: int = cfg.HIDDEN_DIM()
        num_layers: int = cfg.NUM_LAYERS()  # the decoder LSTM's (decoder rnn)
        dropout: float = cfg.DROPOUT()  # the decoder's
        latent_dim: int = cfg.hparam(32, "Latent dimension D.", at_least=1)
        latent: str = cfg.hparam("gaussian", "Posterior family.", choices=LATENTS)
        vmf_concentration: float = cfg.hparam(50.0, "latent vmf: the fixed kappa.", positive=True)
        flow: str = cfg.hparam("none", "Posterior flow.", choices=FLOWS)
        num_flows: int = cfg.hparam(2, "Flow layers (with a flow).", at_least=1)
        decoder: str = cfg.hparam("rnn", "LSTM or dilated CNN decoder.", choices=DECODERS)
        cnn_dilations: tuple[int, ...] = cfg.hparam((1, 2, 4), "decoder cnn: dilations.")
        skip_connections: bool = cfg.hparam(False, "z feeds every decoder layer.")
        word_dropout: float = cfg.hparam(0.0, "Decoder input word dropout rate.",
                                         unit_interval=True)
        kl_schedule: str = cfg.hparam("none", "KL weight annealing.", choices=KL_SCHEDULES)
        kl_warmup_steps: int | None = cfg.hparam(
            None, "With a kl_schedule: steps to reach weight 1 (cyclical: cycle length); "
            f"None: {DEFAULT_KL_WARMUP_STEPS} (the trainer: half its training steps).", at_least=1)
        free_bits: float = cfg.hparam(0.0, "Free bits lambda in nats (0: off).", at_least=0)
        free_bits_per_dimension: bool = cfg.hparam(False, "With free_bits: per dimension.")
        sa_vae_steps: int = cfg.hparam(0, "SA-VAE refinement steps (0: off).", at_least=0)
        sa_vae_step_size: float = cfg.hparam(1.0, "With sa_vae_steps: step size.", positive=True)
        sa_vae_max_grad_norm: float = cfg.hparam(
            5.0, "With sa_vae_steps: clip each example's refinement gradient to this norm "
            "(0: no clipping).", at_least=0)
        iw_samples: int = cfg.hparam(10, "Importance samples for the evaluation NLL (0: ELBO "
                                     "only).", at_least=0)

    input_form = "sentences"
    datasets = ("ptb", "synthetic_hmm")
    can_sample_prior = True
    can_interpolate = True

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256,
                 num_layers: int = 1, dropout: float = 0.0, latent_dim: int = 32,
                 latent: str = "gaussian", vmf_concentration: float = 50.0, flow: str = "none",
                 num_flows: int = 2, decoder: str = "rnn", cnn_dilations: Sequence[int] = (1, 2, 4),
                 skip_connections: bool = False, word_dropout: float = 0.0,
                 kl_schedule: str = "none", kl_warmup_steps: int = DEFAULT_KL_WARMUP_STEPS, free_bits: float = 0.0,
                 free_bits_per_dimension: bool = False, sa_vae_steps: int = 0,
                 sa_vae_step_size: float = 1.0, sa_vae_max_grad_norm: float = 5.0,
                 iw_samples: int = 0, iw_chunk: int = 8, **kwargs):
        super().__init__(**kwargs)
        _check_choice("latent", latent, LATENTS)
        _check_choice("flow", flow, FLOWS)
        _check_choice("decoder", decoder, DECODERS)
        _check_choice("kl_schedule", kl_schedule, KL_SCHEDULES)
        if latent == "vmf" and flow != "none":
            raise ValueError("flow needs latent='gaussian' (flows act on R^D, the vMF lives on "
                             "the sphere)")
        if sa_vae_steps and (latent != "gaussian" or flow != "none"):
            raise ValueError("sa_vae_steps refines a Gaussian posterior's (loc, log scale): it "
                             "needs latent='gaussian' and flow='none'")
        if sa_vae_steps < 0 or sa_vae_max_grad_norm < 0 or iw_samples < 0 or iw_chunk < 1 or \
                kl_warmup_steps <= 0 or num_flows < 1:
            raise ValueError(f"need sa_vae_steps >= 0, sa_vae_max_grad_norm >= 0, "
                             f"iw_samples >= 0, iw_chunk >= 1, kl_warmup_steps > 0 and "
                             f"num_flows >= 1, got {sa_vae_steps}, {sa_vae_max_grad_norm}, "
                             f"{iw_samples}, {iw_chunk}, {kl_warmup_steps}, {num_flows}")
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
        self.config = dict(
            vocab_size=vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim,
            num_layers=num_layers, dropout=dropout, latent_dim=latent_dim, latent=latent,
            vmf_concentration=vmf_concentration, flow=flow, num_flows=num_flows, decoder=decoder,
            cnn_dilations=list(cnn_dilations), skip_connections=skip_connections,
            word_dropout=word_dropout, kl_schedule=kl_schedule, kl_warmup_steps=kl_warmup_steps,
            free_bits=free_bits, free_bits_per_dimension=free_bits_per_dimension,
            sa_vae_steps=sa_vae_steps, sa_vae_step_size=sa_vae_step_size,
            sa_vae_max_grad_norm=sa_vae_max_grad_norm, iw_samples=iw_samples, iw_chunk=iw_chunk)
        self.encoder = RNNEncoder(vocab_size, embed_dim, hidden_dim, name="encoder")
        if latent == "vmf":
            self.head = VMFHead(latent_dim, vmf_concentration, name="head")
        else:
            self.head = GaussianHead(latent_dim, name="head")
        if flow == "iaf":  # one attribute per layer: Checkpoint skips Keras 3 list attributes
            for i in range(num_flows):
                setattr(self, f"iaf_{i}", AutoregressiveNetwork(
                    latent_dim, (hidden_dim,), conditional=True, name=f"iaf_{i}"))
        elif flow == "planar":
            self.flow_head = PlanarFlowHead(latent_dim, num_flows, name="planar")
        if decoder == "cnn":
            self.decoder = CNNDecoder(vocab_size, embed_dim, hidden_dim, kernel_size=3,
                                      dilations=cnn_dilations, dropout=dropout,
                                      skip_connections=skip_connections, name="decoder")
        else:
            self.decoder = RNNDecoder(vocab_size, embed_dim, hidden_dim, num_layers, dropout,
                                      skip_connections=skip_connections, name="decoder")
        self.word_dropout = WordDropout(word_dropout, name="word_dropout")  # keeps <pad>, <bos>
        self.step = TrainingStep(name="training_step")

    @classmethod
    def _from_config(cls, corpus, config) -> "SentenceVAE":
        latent, flow, decoder = config.latent, config.flow, config.decoder
        kl_schedule, free_bits = config.kl_schedule, config.free_bits
        options = {}  # hyperparameters read only where they matter (others are refused)
        if latent == "vmf":
            options["vmf_concentration"] = config.vmf_concentration
        if flow != "none":
            options["num_flows"] = config.num_flows
        if decoder == "cnn":
            options["cnn_dilations"] = list(config.cnn_dilations)
        else:
            options["num_layers"] = config.num_layers
        if kl_schedule != "none" and config.kl_warmup_steps is not None:
            options["kl_warmup_steps"] = config.kl_warmup_steps
        if free_bits > 0:
            options["free_bits_per_dimension"] = config.free_bits_per_dimension
        sa_vae_steps = config.sa_vae_steps
        if sa_vae_steps:
            options["sa_vae_step_size"] = config.sa_vae_step_size
            options["sa_vae_max_grad_norm"] = config.sa_vae_max_grad_norm
        return cls(vocab_size=corpus.info["vocab_size"], embed_dim=config.embed_dim,
                   hidden_dim=config.hidden_dim, dropout=config.dropout,
                   latent_dim=config.latent_dim, latent=latent, flow=flow, decoder=decoder,
                   skip_connections=config.skip_connections,
                   word_dropout=config.word_dropout, kl_schedule=kl_schedule,
                   free_bits=free_bits, sa_vae_steps=sa_vae_steps,
                   iw_samples=config.iw_samples, **options)

    # The generative model.

    def prior(self) -> tfd.Distribution:
        """p(z): N(0, I) on R^D, or the uniform distribution on S^{D−1}."""
        d = self.config["latent_dim"]
        if self.config["latent"] == "vmf":
            return tfd.SphericalUniform(dimension=d)
        return tfd.MultivariateNormalDiag(loc=tf.zeros([d]), scale_diag=tf.ones([d]))

    def log_likelihood(self, inputs, targets, mask, z, training=False) -> tf.Tensor:
        """log p(x | z) of each row under each of S codes.

        Args:
          inputs, targets: int32 `[B, T]`; mask: float `[B, T]`.
          z: `[S, B, D]`.

        Returns:
          `[S, B]`.
        """
        s = tf.shape(z)[0]
        seq_len = tf.shape(inputs)[1]
        tile = lambda t: tf.reshape(tf.tile(t[tf.newaxis], [s, 1, 1]), [-1, seq_len])  # [S·B, T]
        logits = self.decoder(tile(inputs), z=tf.reshape(z, [-1, z.shape[-1]]), mask=tile(mask),
                              training=training)  # [S·B, T, V]
        nll = tf.reduce_sum(token_nll(logits, tile(targets), tile(mask)), axis=1)  # [S·B]
        return -tf.reshape(nll, [s, -1])

    # The inference network.

    def posterior(self, batch, decoder_inputs=None, training=False) -> tfd.Distribution:
        """q(z | x), batch shape [B], event [D] (after SA-VAE refinement, if any).

        `decoder_inputs` (word-dropped `inputs` in training) are what the refinement's ELBO
        decodes; default `batch["inputs"]`.
        """
        mask = tf.cast(batch["mask"], tf.float32)
        features = self.encoder(batch["targets"], mask=mask > 0)  # [B, H]
        # q's parameters in float32 under a mixed-precision policy: its log-density and KL are.
        if self.config["latent"] == "vmf":
            return von_mises_fisher(full_precision(self.head(features)),
                                    self.config["vmf_concentration"])
        loc, scale = full_precision(self.head(features))  # [B, D] each
        if self.config["sa_vae_steps"]:
            inputs = batch["inputs"] if decoder_inputs is None else decoder_inputs
            loc, scale = self._refine(loc, scale, inputs, batch["targets"], mask, training)
        base = gaussian((loc, scale))
        flow = self.config["flow"]
        if flow == "iaf":
            layers = []
            for i in range(self.config["num_flows"]):
                if i:  # alternate the autoregressive order between layers
                    layers.append(tfb.Permute(np.arange(self.config["latent_dim"])[::-1]))
                layers.append(autoregressive_flow(getattr(self, f"iaf_{i}"), context=features,
                                                  inverse=True))
            return tfd.TransformedDistribution(base, tfb.Chain(layers[::-1]))
        if flow == "planar":
            return tfd.TransformedDistribution(
                base, planar_flow(*full_precision(self.flow_head(features))))
        return base

    def _refine(self, loc, scale, inputs, targets, mask, training):
        """SA-VAE: (μ, log σ) after K gradient steps on the one-sample ELBO of each example."""
        prior = self.prior()

        def example_elbo(params, k):
            q = gaussian((params[0], tf.exp(params[1])))
            z = q.sample(seed=self.step.seed(_REFINE_SALT + k))  # [B, D]
            log_lik = self.log_likelihood(inputs, targets, mask, z[tf.newaxis], training)
            return elbo(log_lik, q, prior).elbo  # [B]

        loc, log_scale = refine(example_elbo, [loc, tf.math.log(scale)],
                                self.config["sa_vae_steps"], self.config["sa_vae_step_size"],
                                self.config["sa_vae_max_grad_norm"] or None)
        return loc, tf.exp(log_scale)

    @staticmethod
    def posterior_mean(posterior: tfd.Distribution) -> tf.Tensor:
        """E_q[z] `[B, D]`; for a flow q = f#q_0 (no closed form), the point f(E_{q_0}[z_0]).

        A deterministic point, not a Monte Carlo mean: sampling noise would inflate the
        variance across examples that the active-units count thresholds.
        """
        if isinstance(posterior, tfd.TransformedDistribution):
            return posterior.bijector.forward(posterior.distribution.mean())
        return posterior.mean()

    # The contract of `LatentVariableModel`.

    def objective(self, batch, training=False) -> Objective:
        mask = tf.cast(batch["mask"], tf.float32)  # [B, T]
        inputs = self.word_dropout(batch["inputs"], training=training)  # [B, T]
        targets = batch["targets"]
        q = self.posterior(batch, inputs, training)
        prior = self.prior()
        z = q.sample(1, seed=self.step.seed(_SAMPLE_SALT))  # [1, B, D]
        log_lik = self.log_likelihood(inputs, targets, mask, z, training)  # [1, B]
        beta = kl_weight(self.config["kl_schedule"], self.step.value,
                         self.config["kl_warmup_steps"])
        terms = elbo(log_lik, q, prior, z=z, kl_weight=beta, free_bits=self.config["free_bits"],
                     free_bits_per_dimension=self.config["free_bits_per_dimension"])
        if training:
            self.step.increment()
        tokens = tf.reduce_sum(mask, axis=1)  # [B]
        stats = {"tokens": tokens, "sentences": tf.ones_like(tokens), "elbo": terms.elbo,
                 "reconstruction": terms.reconstruction, "kl": terms.kl, "nll": -terms.elbo}
        if not training and self.config["iw_samples"]:
            stats["nll"] = -self.importance_sampled_log_prob(batch, q)
        return Objective(loss=-terms.objective, stats=stats)

    def importance_sampled_log_prob(self, batch, posterior: tfd.Distribution) -> tf.Tensor:
        """log p̂(x) `[B]` with K = `iw_samples` proposals from `posterior`.

        The K codes are decoded `iw_chunk` at a time (folded into the batch), which bounds the
        memory of the `[chunk · B, T, V]` logits.
        """
        mask = tf.cast(batch["mask"], tf.float32)
        prior = self.prior()
        k = self.config["iw_samples"]
        log_lik = in_chunks(
            lambda z_c: self.log_likelihood(batch["inputs"], batch["targets"], mask, z_c),
            k, self.config["iw_chunk"])  # [K, B]

        def log_joint(z):  # [K, B, D] -> [K, B]
            return log_lik(z) + prior.log_prob(z)

        return importance_sampled_log_marginal(log_joint, posterior, k,
                                               seed=self.step.seed(_IW_SALT))

    def metrics_from_sums(self, sums):
        """Per-token `nll`/`ppl` (importance-sampled if `iw_samples`, else the ELBO's), and per
        sentence `sentence_nll`, `elbo`, `reconstruction` (its negative: the NLL term), `kl`."""
        sentences = max(sums["sentences"], 1.0)
        result = lm_metrics(sums)
        result.update(sentence_nll=sums["nll"] / sentences, elbo=sums["elbo"] / sentences,
                      reconstruction=-sums["reconstruction"] / sentences,
                      kl=sums["kl"] / sentences, sentences=sums["sentences"],
                      iw_samples=float(self.config["iw_samples"]))
        return result

    def evaluate_corpus(self, corpus, split: str, batch_size: int) -> dict[str, float]:
        """Active units (δ = 0.01) from the posterior means of the whole split, and the mutual
        information I_q(x; z), estimated per batch (aggregate posterior over the batch's rows) and
        averaged over rows; omitted for flows (q(z | x') at another row's z needs the inverse)."""
        with_mi = self.config["flow"] == "none"

        @tf.function(reduce_retracing=True)  # batches of varying length T
        def summarize(batch):
            q = self.posterior(batch)
            mi = (metrics.mutual_information(q, q.sample(1, seed=self.step.seed(_IW_SALT)))
                  if with_mi else tf.constant(0.0))
            return self.posterior_mean(q), mi

        means, mi_sum, rows = [], 0.0, 0
        for batch in corpus.dataset(split, self.input_form, batch_size):
            mean, mi = summarize(batch)
            means.append(mean)
            n = int(mean.shape[0])
            mi_sum, rows = mi_sum + float(mi) * n, rows + n
        result = {"active_units": float(metrics.active_units(tf.concat(means, axis=0)))}
        if with_mi:
            result["mutual_information"] = mi_sum / max(rows, 1)
        return result

    # Generation.

    def sample_prior(self, start_ids, max_length, temperature=1.0, seed=(0, 0)) -> tf.Tensor:
        """x ~ p(x | z), z ~ p(z): int32 `[N, max_length]` for start ids `[N]` (`<bos>`)."""
        seed = tf.cast(seed, tf.int32)
        z = self.prior().sample(tf.shape(start_ids)[0], seed=seed)  # [N, D]
        return self.decoder.sample(start_ids, max_length, z=z, temperature=temperature,
                                   seed=seed + tf.constant([0, 1]))

    def homotopy(self, batch, num_points, max_length, temperature=1.0, seed=(0, 0)) -> tf.Tensor:
        """Decodings along the line between two sentences' posterior means (Bowman et al. 2016).

        Args:
          batch: a `sentences` batch of exactly 2 rows, x_a and x_b.
          num_points: P ≥ 2 codes z_i = (1 − t_i) E_q[z | x_a] + t_i E_q[z | x_b],
            t_i = i / (P − 1) (projected onto the sphere for a vMF latent).

        Returns:
          int32 `[P, max_length]`, one decoded sentence per point (temperature 0: greedy).
        """
        means = self.posterior_mean(self.posterior(batch))  # [2, D]
        tf.debugging.assert_equal(tf.shape(means)[0], 2,
                                  message="homotopy needs a batch of exactly 2 sentences")
        t = tf.linspace(0.0, 1.0, num_points)[:, tf.newaxis]  # [P, 1]
        z = (1.0 - t) * means[0] + t * means[1]  # [P, D]
        if self.config["latent"] == "vmf":
            z = tf.math.l2_normalize(z, axis=-1)
        start = tf.fill([tf.shape(z)[0]], batch["inputs"][0, 0])  # <bos>
        return self.decoder.sample(start, max_length, z=z, temperature=temperature,
                                   seed=tf.cast(seed, tf.int32))

    def serving_signatures(self, batcher) -> dict:
        """`sample(num_samples, max_length, temperature, seed) -> {text [N]}` and
        `homotopy(text [2], num_points, max_length, temperature, seed) -> {text [P],
        unknown_words [2]}` (the words of each end point the vocabulary lacks)."""

        @tf.function(input_signature=[tf.TensorSpec([2], tf.string, name="text"),
                                      tf.TensorSpec([], tf.int32, name="num_points"),
                                      *serving.GENERATION])
        def homotopy(text, num_points, max_length, temperature, seed):
            ids = self.homotopy(batcher(text), num_points, max_length, temperature, seed)
            return {"text": batcher.to_text(ids), **batcher.unknown_words(text)}

        return {"sample": serving.sample_signature(batcher, self.sample_prior),
                "homotopy": homotopy}

    def get_config(self):
        return {**super().get_config(), **self.config}
