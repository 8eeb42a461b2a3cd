"""Neural topic models: NVDM, GSM and ProdLDA as one VAE over bags of words.

A document is its count vector n ∈ ℕ^V, of length N = Σ_v n_v. All three models share the
inference network, the Gaussian reparameterized posterior and the ELBO (Miao et al. 2016):

    q(z | n) = N(μ(n), diag σ²(n)),   μ, σ = GaussianHead(BagOfWordsEncoder(n)),   z ∈ R^K
    θ = g(z)                                                (the document's K-dim representation)
    log p(n | z) = Σ_v n_v log p(w = v | θ)                 (the multinomial coefficient dropped)
    ELBO(n) = E_q[log p(n | z)] − KL(q(z | n) || p(z)) ≤ log p(n),

the KL in closed form (`tflv.vi.elbo`) and E_q by one draw z = μ + σ ε (ε ~ N(0, I)). They differ
only in the document-topic construction g, the word distribution and the prior
(the parameter `topic_model`):

    model    θ = g(z)          p(w | θ)                                         p(z)
    nvdm     z                 softmax(θᵀR + b)        (log-linear decoder)      N(0, I)
    gsm      softmax(Wz + c)   Σ_k θ_k softmax(T_k)    (mixture of topics)       N(0, I)
    prodlda  softmax(z)        softmax(θᵀR + b)        (product of experts)      Laplace(Dir(α))

The word distribution is a parameter too (`topic_decoder`): a model whose θ lies on the simplex can
take either decoder. GSM with the log-linear decoder is Miao et al.'s (2017, "Topic vs. Document
Models") GSM as a document model; ProdLDA with the mixture is Srivastava & Sutton's NVLDA. The
mixture's topics are coherent, the log-linear decoder's perplexity lower (20news, 50 topics, 40,000
steps: GSM 902 and NPMI 0.20 as a mixture, 851 and NPMI −0.06 log-linear; BENCHMARKS.md).

Row k of R (or T) is topic k's word scores; its top words are the topic's description. With
`embed_dim` (as the trainer builds GSM) the topic logits are factored as topic × word
embeddings, T = t vᵀ with t ∈ R^{K×H}, v ∈ R^{V×H} (Miao et al. 2017, β_k = softmax(v t_kᵀ)):
the shared word embeddings let a gradient for one topic move every topic's similar words
(20news, 50 topics, H = 256: test perplexity 955 against 1160 with T free after 5,000 steps,
902 against 930 after 40,000; BENCHMARKS.md). ProdLDA's prior is the Laplace approximation of a
Dirichlet Dir(α) on θ in the softmax basis (MacKay 1998; Srivastava & Sutton 2017, eq. 3):

    μ_k = log α_k − (1/K) Σ_i log α_i,     σ²_k = (1/α_k)(1 − 2/K) + (1/K²) Σ_i 1/α_i,

the mode of log Dir(softmax(z)) + log |∂θ/∂z| = Σ_k α_k log θ_k (+ const) and the diagonal of
the pseudo-inverse of its negative Hessian, diag(α) − ααᵀ/Σα, restricted to Σ_k z_k = 0.

Evaluation (../shared/data/README.md, 20news): `ppl` = exp(mean_d −ELBO_d / N_d), the per-document
convention of Miao et al. 2016; `ppl_corpus` = exp(−Σ_d ELBO_d / Σ_d N_d); `kl` = mean_d KL;
`evaluate_corpus` adds the mean NPMI of each topic's top 10 words on the split's own document
co-occurrences (`tflv.metrics.npmi`) and the topic diversity of their top 25 words
(`tflv.metrics.topic_diversity`, Dieng et al. 2020), prints those words and warns when the topics
collapse (diversity or mean KL below `COLLAPSE_DIVERSITY`, `COLLAPSE_KL`).

ProdLDA trains by Srivastava & Sutton's recipe by default (`RECIPES`, the argument `recipe`):
batch-normalised decoder logits and posterior moments, dropout on the encoder and on θ, Adam
with β1 = 0.99; `recipe="nvdm"` trains it as NVDM (tflv's ProdLDA before issue 19). A recipe
string may override its settings (`parse_recipe`: batch norm's ε and momentum, PyTorch's or
Glorot's initialisers, the gradient clipping, dropout, β1, the prior), as the ablations against
Pyro's ProdLDA in BENCHMARKS.md do.

#### References
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing. ICML.
- Miao, Grefenstette & Blunsom (2017). Discovering Discrete Latent Topics with Neural Variational
  Inference. ICML.
- Srivastava & Sutton (2017). Autoencoding Variational Inference for Topic Models. ICLR.
- MacKay (1998). Choice of Basis for Laplace Approximation. Machine Learning 33.
- Lau, Newman & Baldwin (2014). Machine Reading Tea Leaves (NPMI coherence).
- Dieng, Ruiz & Blei (2020). Topic Modeling in Embedding Spaces. TACL (topic diversity).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, Sequence

import keras
import numpy as np
import scipy.sparse
import tensorflow as tf
import tensorflow_probability as tfp

from tflv import metrics, summaries, vi
from tflv.layers.encoders import BagOfWordsEncoder
from tflv.layers.heads import GaussianHead, gaussian
from tflv.layers.topics import (INITIALIZERS, NormalizedGaussianHead, TopicDecoder,
                               linear_initializers)
from tflv.layers.training_step import TrainingStep
from tflv.models import serving
from tflv.models import config as cfg
from tflv.models.base import LatentVariableModel, Objective, full_precision

tfd = tfp.distributions

TOPIC_MODELS = ("nvdm", "gsm", "prodlda")
TOPIC_DECODERS = ("mixture", "log_linear")
TOP_WORDS = 10  # NPMI's top words per topic
DIVERSITY_WORDS = 25  # topic diversity's (Dieng et al. 2020)
# Below either, `evaluate_topics` warns that the topics collapsed.
COLLAPSE_DIVERSITY, COLLAPSE_KL = 0.3, 0.5
RECIPES = {  # training recipes: the encoder, regularisation, initialisers and optimiser they set
    # bn_epsilon, bn_momentum: every BatchNormalization's (Keras' momentum: the running moments'
    # decay, torch's 1 − momentum); initializer: the Dense and topic-word weights' (`INITIALIZERS`);
    # clip_norm: the trainer's global gradient-norm clipping (0: none; None: the trainer's default);
    # prior: ProdLDA's p(z) ("laplace": the Laplace approximation of Dir(α); "standard_normal").
    "srivastava_sutton": dict(hidden_units=(100, 100), activation="softplus", dropout=0.6,
                              batch_norm=True, adam_beta_1=0.99, bn_epsilon=1e-3,
                              bn_momentum=0.99, initializer="glorot", clip_norm=5.0,
                              prior="laplace"),
    "nvdm": dict(hidden_units=(500,), activation="tanh", dropout=0.0, batch_norm=False,
                 adam_beta_1=0.9, bn_epsilon=1e-3, bn_momentum=0.99, initializer="glorot",
                 clip_norm=None, prior="laplace"),
}
# The settings a recipe string may override ("NAME:key=value,..."), with their parsers.
RECIPE_OVERRIDES = {"dropout": float, "adam_beta_1": float, "bn_epsilon": float,
                    "bn_momentum": float, "initializer": str, "clip_norm": float, "prior": str}
PRIORS = ("laplace", "standard_normal")


def parse_recipe(recipe: str) -> tuple[str, dict]:
    """A recipe string → (its name, its settings): `"NAME"` is `RECIPES[NAME]`;
    `"NAME:key=value,..."` overrides some of them (`RECIPE_OVERRIDES`), e.g.
    `"srivastava_sutton:clip_norm=0,initializer=torch"` (the ablations of BENCHMARKS.md).

    >>> parse_recipe("srivastava_sutton:bn_epsilon=1e-5")[1]["bn_epsilon"]
    1e-05
    """
    name, _, overrides = recipe.partition(":")
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    settings = dict(RECIPES[name])
    for item in filter(None, overrides.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in RECIPE_OVERRIDES:
            raise ValueError(f"recipe {recipe!r}: {item!r} is not key=value with a key among "
                             f"{', '.join(RECIPE_OVERRIDES)}")
        try:
            settings[key] = RECIPE_OVERRIDES[key](value)
        except ValueError:
            raise ValueError(f"recipe {recipe!r}: {key} takes a number, got {value!r}") from None
    checks = {"initializer": settings["initializer"] in INITIALIZERS,
              "prior": settings["prior"] in PRIORS,
              "dropout": 0.0 <= settings["dropout"] < 1.0,
              "adam_beta_1": 0.0 <= settings["adam_beta_1"] < 1.0,
              "bn_epsilon": settings["bn_epsilon"] > 0,
              "bn_momentum": 0.0 <= settings["bn_momentum"] < 1.0,
              "clip_norm": settings["clip_norm"] is None or settings["clip_norm"] >= 0}
    bad = [key for key, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"recipe {recipe!r}: invalid " + ", ".join(
            f"{key}={settings[key]!r}" for key in bad) + f" (initializer: {', '.join(INITIALIZERS)}"
            f"; prior: {', '.join(PRIORS)}; dropout, adam_beta_1, bn_momentum in [0, 1); "
            f"bn_epsilon > 0; clip_norm >= 0)")
    return name, settings


def laplace_dirichlet_prior(concentration: tf.Tensor) -> tfd.MultivariateNormalDiag:
    """The Laplace approximation of Dir(α) in the softmax basis: N(μ, diag σ²), event `[K]`.

    Args:
      concentration: α `[K]`, positive, K ≥ 2.
    """
    alpha = tf.convert_to_tensor(concentration)
    if alpha.shape.rank != 1 or alpha.shape[0] is None or alpha.shape[0] < 2:
        raise ValueError(f"concentration must be a vector [K] with K >= 2, got {alpha.shape}")
    k = float(alpha.shape[0])
    log_alpha = tf.math.log(alpha)
    loc = log_alpha - tf.reduce_mean(log_alpha)  # [K]
    variance = (1.0 / alpha) * (1.0 - 2.0 / k) + tf.reduce_sum(1.0 / alpha) / k ** 2  # [K]
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.sqrt(variance))


def split_counts(corpus, split: str, batch_size: int) -> scipy.sparse.csr_matrix:
    """All documents of `split` as a sparse `[D, V]` count matrix."""
    rows = [scipy.sparse.csr_matrix(batch["counts"].numpy())
            for batch in corpus.dataset(split, "bow", batch_size)]
    return scipy.sparse.vstack(rows).tocsr()


def evaluate_topics(top_words: np.ndarray, corpus, split: str, batch_size: int,
                    kl: float | None = None) -> dict[str, float]:
    """`npmi`, the mean NPMI of each topic's first `TOP_WORDS` words on the documents of `split`,
    and `diversity`, the share of distinct words among all topics' top words (`top_words`, int
    `[K, N]`, best first, N = `DIVERSITY_WORDS` as Dieng et al. 2020), and a warning when the
    topics collapsed (diversity below `COLLAPSE_DIVERSITY`, or the mean KL `kl`, if given, below
    `COLLAPSE_KL` nats).

    Prints each topic's words and writes them as the text summary `{split}/topics`: per topic
    its NPMI, the share of its top-N words in no other topic's top N, and its top 10 words.
    """
    top_words = np.asarray(top_words)
    npmi = metrics.npmi(top_words[:, :TOP_WORDS], split_counts(corpus, split, batch_size))  # [K]
    diversity = metrics.topic_diversity(top_words)
    words, owners = np.unique(top_words, return_counts=True)
    shared = set(words[owners > 1].tolist())  # assumes no topic lists a word twice
    tokens = corpus.vocab.tokens
    rows = [[k, f"{score:+.3f}", f"{np.mean([w not in shared for w in ids]):.2f}",
             " ".join(tokens[i] for i in ids[:TOP_WORDS])]
            for k, (ids, score) in enumerate(zip(top_words, npmi))]
    for k, score, unique, line in rows:
        print(f"topic {k:3d}  npmi {score}  unique {unique}  {line}", flush=True)
    print(f"topics: mean npmi {np.mean(npmi):+.3f} (top {TOP_WORDS}), diversity {diversity:.3f} "
          f"(top {top_words.shape[1]})", flush=True)
    summaries.text_table(f"{split}/topics",
                         ["topic", "NPMI", f"unique top-{top_words.shape[1]}", "top words"], rows)
    collapse_warning(diversity, kl)
    return {"npmi": float(np.mean(npmi)), "diversity": diversity}


def collapse_warning(diversity: float, kl: float | None = None) -> str | None:
    """Warns (`UserWarning`, also printed) when the topics collapsed: `diversity` below
    `COLLAPSE_DIVERSITY` (many topics share their top words) or the mean KL(q || p) `kl` below
    `COLLAPSE_KL` nats (θ barely depends on the document). Returns the message, or None."""
    reasons = []
    if diversity < COLLAPSE_DIVERSITY:
        reasons.append(f"topic diversity {diversity:.3f} < {COLLAPSE_DIVERSITY}")
    if kl is not None and kl < COLLAPSE_KL:
        reasons.append(f"mean KL {kl:.3f} nats < {COLLAPSE_KL}")
    if not reasons:
        return None
    message = ("topics collapsed (" + "; ".join(reasons) + "): the posterior ignores the "
               "document or the topics repeat one another. Remedies: ProdLDA's published recipe "
               "(prodlda's default, topic_recipe='srivastava_sutton': batch-normalised logits, "
               "dropout, Adam β1 0.99), more training steps, a larger batch (200 as Srivastava & "
               "Sutton), fewer num_topics, or a mixture decoder (topic_decoder='mixture')")
    print("WARNING: " + message, flush=True)
    warnings.warn(message, stacklevel=2)
    return message


def document_metrics(sums: Mapping[str, float]) -> dict[str, float]:
    """`ppl` (per-document), `ppl_corpus`, mean `kl` and `elbo` from summed per-document stats.

    Expects the sums of `elbo_per_token` (ELBO_d / N_d), `elbo`, `tokens` (N_d), `kl` and
    `documents` (1 per document).
    """
    documents = max(sums["documents"], 1.0)
    exp = metrics.exp_nats
    return {"ppl": exp(-sums["elbo_per_token"] / documents),
            "ppl_corpus": exp(-sums["elbo"] / max(sums["tokens"], 1.0)),
            "kl": sums["kl"] / documents, "elbo": sums["elbo"] / documents,
            "documents": sums["documents"]}


def document_stats(elbo: tf.Tensor, kl: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
    """The per-document statistics `document_metrics` sums; all `[B]`."""
    return {"elbo_per_token": elbo / tf.maximum(lengths, 1.0), "elbo": elbo, "nll": -elbo,
            "tokens": lengths, "kl": kl, "documents": tf.ones_like(elbo)}


def check_counts(counts, vocab_size: int) -> tf.Tensor:
    """`counts` as a tensor of static shape `[B, V]` (unknown static shapes are checked at run)."""
    counts = tf.convert_to_tensor(counts)
    if counts.shape.rank is not None and (counts.shape.rank != 2 or
                                          counts.shape[-1] not in (None, vocab_size)):
        raise ValueError(f"batch['counts'] must be [B, {vocab_size}] word counts, got shape "
                         f"{counts.shape}")
    return tf.ensure_shape(counts, [None, vocab_size])


def topics_signature(batcher, topic_proportions) -> serving.Signature:
    """`topics(text [N]) -> {theta [N, K]}`, every topic model's SavedModel signature.

    Args:
      topic_proportions: the model's counts `[B, V]` → θ `[B, K]`.
    """
    return serving.text_signature(
        batcher, lambda batch: {"theta": topic_proportions(batch["counts"])})


def _replica_seed(step: TrainingStep) -> tf.Tensor:
    """The stateless seed `[2]` of training step t, different on each `tf.distribute` replica."""
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(step.seed(0), tf.cast(replica, tf.int32))


@keras.saving.register_keras_serializable(package="tflv")
class NeuralTopicModel(LatentVariableModel):
    """NVDM, GSM or ProdLDA on bag-of-words batches (see the module docstring).

    Args:
      vocab_size: V.
      topic_model: `"nvdm"`, `"gsm"` or `"prodlda"`.
      num_topics: K, the latent dimension.
      recipe: how the networks are regularised and trained (`RECIPES`); None: the model's own,
        `"srivastava_sutton"` for ProdLDA, `"nvdm"` (Miao et al.'s settings) for NVDM and GSM.
        `"srivastava_sutton"` (Srivastava & Sutton 2017, as their code,
        github.com/akashgit/autoencoding_vi_for_topic_models): two softplus layers of 100
        units, the posterior's mean and log variance batch-normalised
        (`NormalizedGaussianHead`), the decoder's logits batch-normalised with a shift and no
        scale (`TopicDecoder(batch_norm=True)`; ε 1e-3, `tf.contrib.layers.batch_norm`'s),
        Glorot-uniform weights and zero biases, the Laplace approximation of Dir(1), Adam with
        β1 = 0.99 (`adam_beta_1`, read by the trainer; their step size 2e-3 is the trainer's
        default, their batch 200 documents) and dropout 0.6 on the encoder's output
        and on θ (their `keep_prob` 0.4; Pyro's tutorial takes 0.2: on 20news_prodlda, K = 50,
        100 epochs, three seeds, 0.6 gave NPMI 0.193–0.225 / 0.309–0.323 on test / all
        documents against 0.134–0.186 / 0.248–0.267 at 0.2, their published topics' level,
        with their topics' repetitiveness: diversity 0.41–0.42 against 0.64–0.66;
        BENCHMARKS.md). One setting is not
        their code's but kept by measurement: the trainer's gradient clipping at norm 5
        (`clip_norm`; their code and Pyro's clip nothing, which lowered diversity from
        0.64–0.66 to 0.55–0.57 at dropout 0.2 and the test documents' NPMI from 0.207 to 0.133
        at 0.6). Any of `RECIPE_OVERRIDES` can be changed in the string (`parse_recipe`), e.g.
        `"srivastava_sutton:dropout=0.2"` for Pyro's dropout.
        `"nvdm"`: none of these (tflv's ProdLDA before issue 19). Only ProdLDA takes
        `"srivastava_sutton"`.
      hidden_units: widths of the encoder MLP (None: the recipe's).
      activation: its activation (None: the recipe's; tanh, as Miao et al.'s code, for `"nvdm"`).
      dropout: the rate on the encoder's output and on θ (None: the recipe's).
      dirichlet_prior: ProdLDA's α (the same for every topic; 1 in Srivastava & Sutton).
      embed_dim: the topic and word embedding size H (`TopicDecoder`; the trainer sets it for
        GSM only); None leaves the topic logits free.
      topic_decoder: `"mixture"` or `"log_linear"` p(w | θ); None: the model's own (mixture for
        GSM, log-linear for NVDM and ProdLDA). NVDM's θ = z is not on the simplex: log-linear
        only.

    The reparameterization noise ε of training step t is drawn from the stateless seed
    (t, replica) of a `TrainingStep` (so a resumed run draws the same noise); evaluation reuses
    the current step's seed, so it is deterministic.

    Batch (form `bow`): `counts` float32 `[B, V]`.
    """

    @dataclasses.dataclass(frozen=True)
    class Config(cfg.ModelConfig):
        """The neural topic models' hyperparameters (`NVDM.from_corpus(corpus, config)`)."""
        num_topics: int = cfg.NUM_TOPICS()
        hidden_dim: int = cfg.HIDDEN_DIM()  # the encoder's, under topic_recipe nvdm
        num_layers: int = cfg.NUM_LAYERS()  # the encoder's, under topic_recipe nvdm
        embed_dim: int = cfg.EMBED_DIM()  # gsm's topic and word embeddings
        topic_decoder: str | None = cfg.hparam(
            None, "p(w | θ) as a mixture of topics or log-linear in θ (None: gsm mixture, nvdm "
            "and prodlda log_linear; gsm log_linear = GSM as a document model, prodlda "
            "mixture = NVLDA).", choices=TOPIC_DECODERS)
        topic_recipe: str | None = cfg.hparam(
            None, "Training recipe, srivastava_sutton or nvdm (None: prodlda srivastava_sutton "
            "= batch norm, dropout 0.6, Adam beta1 0.99, two softplus layers of 100; nvdm and gsm "
            "nvdm = Miao et al.'s), optionally with settings overridden as NAME:key=value,... "
            "(keys: dropout, adam_beta_1, bn_epsilon, bn_momentum, initializer=glorot|torch, "
            "clip_norm, prior=laplace|standard_normal; parse_recipe).")

        def __post_init__(self):
            super().__post_init__()
            if self.topic_recipe is not None:
                try:
                    parse_recipe(self.topic_recipe)
                except ValueError as err:
                    raise cfg.ConfigError(f"topic_recipe: {err}", "topic_recipe") from None

    input_form = "bow"
    datasets = ("news20",)
    default_topic_model = ""  # set by the registered subclasses

    def __init__(self, vocab_size: int, topic_model: str, num_topics: int = 50,
                 hidden_units: Sequence[int] | None = None, activation: str | None = None,
                 dirichlet_prior: float = 1.0, embed_dim: int | None = None,
                 topic_decoder: str | None = None, recipe: str | None = None,
                 dropout: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if topic_model not in TOPIC_MODELS:
            raise ValueError(f"unknown topic_model {topic_model!r}; valid: "
                             f"{', '.join(TOPIC_MODELS)}")
        recipe = recipe or ("srivastava_sutton" if topic_model == "prodlda" else "nvdm")
        recipe_name, settings = parse_recipe(recipe)
        if recipe_name == "srivastava_sutton" and topic_model != "prodlda":
            raise ValueError(f"recipe 'srivastava_sutton' is ProdLDA's; {topic_model} takes "
                             f"recipe 'nvdm'")
        hidden_units = settings["hidden_units"] if hidden_units is None else hidden_units
        activation = activation or settings["activation"]
        dropout = settings["dropout"] if dropout is None else dropout
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_topics < 2:
            raise ValueError(f"num_topics must be >= 2, got {num_topics}")
        if dirichlet_prior <= 0:
            raise ValueError(f"dirichlet_prior must be > 0, got {dirichlet_prior}")
        topic_decoder = topic_decoder or ("mixture" if topic_model == "gsm" else "log_linear")
        if topic_decoder not in TOPIC_DECODERS:
            raise ValueError(f"unknown topic_decoder {topic_decoder!r}; valid: "
                             f"{', '.join(TOPIC_DECODERS)}")
        if topic_model == "nvdm" and topic_decoder == "mixture":
            raise ValueError("topic_decoder='mixture' needs θ on the simplex (gsm, prodlda); "
                             "nvdm's θ = z is a real vector")
        batch_norm = settings["batch_norm"]
        if batch_norm and topic_decoder == "mixture":
            raise ValueError("recipe 'srivastava_sutton' batch-normalises log-linear logits; "
                             "with topic_decoder='mixture' (NVLDA) take recipe 'nvdm'")
        if settings["initializer"] != "glorot" and not batch_norm:
            raise ValueError(f"recipe {recipe!r}: initializer {settings['initializer']!r} is "
                             f"for recipe 'srivastava_sutton' (its encoder head and decoder)")
        if settings["prior"] != "laplace" and topic_model != "prodlda":
            raise ValueError(f"recipe {recipe!r}: prior {settings['prior']!r} is ProdLDA's; "
                             f"{topic_model}'s is N(0, I)")
        self.config = dict(vocab_size=vocab_size, topic_model=topic_model, num_topics=num_topics,
                           hidden_units=list(hidden_units), activation=activation,
                           dirichlet_prior=dirichlet_prior, embed_dim=embed_dim,
                           topic_decoder=topic_decoder, recipe=recipe, dropout=dropout)
        self.vocab_size, self.topic_model, self.num_topics = vocab_size, topic_model, num_topics
        self.dirichlet_prior, self.recipe = dirichlet_prior, recipe
        self.prior_family = settings["prior"]
        # the trainer reads these: Adam's β1 and the gradient-norm clipping (None: trainer's)
        self.adam_beta_1, self.clip_norm = settings["adam_beta_1"], settings["clip_norm"]
        self.encoder = BagOfWordsEncoder(hidden_units, activation=activation, name="encoder")
        if settings["initializer"] != "glorot":  # Dense's own otherwise (same seeds as before)
            for fan_in, layer in zip([vocab_size, *hidden_units], self.encoder.mlp):
                for key, value in linear_initializers(settings["initializer"], fan_in).items():
                    setattr(layer, key, keras.initializers.get(value))  # before it builds
        bn = dict(bn_epsilon=settings["bn_epsilon"], bn_momentum=settings["bn_momentum"],
                  initializer=settings["initializer"])
        self.head = (NormalizedGaussianHead(num_topics, **bn, name="head") if batch_norm
                     else GaussianHead(num_topics, name="head"))
        self.encoder_dropout = keras.layers.Dropout(dropout, name="encoder_dropout")
        self.theta_dropout = keras.layers.Dropout(dropout, name="theta_dropout")
        self.theta_projection = (keras.layers.Dense(num_topics, name="theta_projection")
                                 if topic_model == "gsm" else None)
        self.decoder = TopicDecoder(vocab_size, mixture=topic_decoder == "mixture",
                                    embed_dim=embed_dim, batch_norm=batch_norm,
                                    **(bn if batch_norm else {}), name="decoder")
        self.step = TrainingStep(name="training_step")

    @classmethod
    def _from_config(cls, corpus, config) -> "NeuralTopicModel":
        """`topic_recipe` (default: the model's own); `hidden_dim`, `num_layers` shape the
        encoder under recipe `nvdm` only (`srivastava_sutton` fixes two layers of 100)."""
        recipe = config.topic_recipe or ("srivastava_sutton"
                                         if cls.default_topic_model == "prodlda" else "nvdm")
        hidden_units = ([config.hidden_dim] * config.num_layers if recipe.partition(":")[0] == "nvdm" else None)
        return cls(vocab_size=corpus.info["vocab_size"], topic_model=cls.default_topic_model,
                   num_topics=config.num_topics, hidden_units=hidden_units,
                   embed_dim=config.embed_dim if cls.default_topic_model == "gsm" else None,
                   topic_decoder=config.topic_decoder, recipe=recipe)

    def prior(self) -> tfd.MultivariateNormalDiag:
        """p(z), event `[K]`."""
        if self.topic_model == "prodlda" and self.prior_family == "laplace":
            return laplace_dirichlet_prior(tf.fill([self.num_topics], self.dirichlet_prior))
        return tfd.MultivariateNormalDiag(loc=tf.zeros([self.num_topics]))

    def document_topics(self, z: tf.Tensor) -> tf.Tensor:
        """θ = g(z): `[..., K]` → `[..., K]`."""
        if self.topic_model == "nvdm":
            return z
        if self.topic_model == "gsm":
            z = full_precision(self.theta_projection(z))
        return tf.nn.softmax(z, axis=-1)

    def posterior(self, counts: tf.Tensor, training: bool = False) -> tfd.MultivariateNormalDiag:
        """q(z | n): counts `[B, V]` → batch `[B]`, event `[K]`."""
        counts = check_counts(counts, self.vocab_size)
        features = self.encoder_dropout(self.encoder(counts), training=training)
        if isinstance(self.head, NormalizedGaussianHead):  # q in float32 (mixed precision)
            return gaussian(full_precision(self.head(features, training=training)))
        return gaussian(full_precision(self.head(features)))

    def elbo_terms(self, counts: tf.Tensor, noise: tf.Tensor, training: bool = False
                   ) -> vi.ELBO:
        """The ELBO of counts `[B, V]` at z = μ + σ ε for given noise ε `[S, B, K]` or `[B, K]`."""
        return self.elbo_under(self.posterior(counts, training=training), counts, noise,
                               training=training)

    def elbo_under(self, posterior: tfd.MultivariateNormalDiag, counts: tf.Tensor,
                   noise: tf.Tensor, training: bool = False) -> vi.ELBO:
        """The ELBO of counts `[B, V]` under any Gaussian q(z | n) (batch `[B]`, event `[K]`;
        e.g. one refined per document, Kim et al. 2018's semi-amortized inference) at
        z = μ + σ ε, noise ε `[S, B, K]` or `[B, K]`. `training`: dropout on θ and batch
        statistics in the decoder (recipe `srivastava_sutton`)."""
        z = posterior.loc + posterior.stddev() * noise  # [S, B, K]
        theta = self.theta_dropout(self.document_topics(z), training=training)
        log_word = full_precision(self.decoder(theta, training=training))  # [S, B, V]
        log_likelihood = tf.reduce_sum(counts * log_word, axis=-1)  # [S, B]
        return vi.elbo(log_likelihood, posterior, self.prior(), z=z)

    def objective(self, batch, training=False) -> Objective:
        counts = check_counts(batch["counts"], self.vocab_size)
        shape = tf.stack([tf.shape(counts)[0], self.num_topics])
        noise = tf.random.stateless_normal(shape, seed=_replica_seed(self.step))  # [B, K]
        terms = self.elbo_terms(counts, noise, training=training)
        if training:
            self.step.increment()
        return Objective(loss=-terms.elbo, stats=document_stats(
            terms.elbo, terms.kl, tf.reduce_sum(counts, axis=-1)))

    def metrics_from_sums(self, sums):
        return document_metrics(sums)

    def topic_word(self) -> tf.Tensor:
        """Topic-word scores `[K, V]`: R (log-linear decoder, with or without batch norm, as
        Srivastava & Sutton's code and Pyro's tutorial rank them) or T (mixture, β = softmax(T)).

        Under batch norm the evaluation logit of word v is θᵀR_v / sqrt(Var_v + ε) + const; ranking
        by that rescaled R lifts rare words (tiny Var_v): on 20news_prodlda after 300 steps half
        the topics led with `_eos_`, which never occurs."""
        return self.decoder.topic_logits()

    def evaluate_corpus(self, corpus, split: str, batch_size: int) -> dict[str, float]:
        k = min(DIVERSITY_WORDS, self.vocab_size)
        top = tf.math.top_k(self.topic_word(), k=k).indices.numpy()  # [K, 25]
        return evaluate_topics(top, corpus, split, batch_size, kl=self.mean_kl(corpus, split,
                                                                                batch_size))

    def mean_kl(self, corpus, split: str, batch_size: int) -> float:
        """Mean over the documents of `split` of KL(q(z | n) || p(z)) (evaluation mode)."""
        total, documents = 0.0, 0
        for batch in corpus.dataset(split, "bow", batch_size):
            posterior = self.posterior(batch["counts"])
            total += float(tf.reduce_sum(vi.kl_divergence(posterior, self.prior())))
            documents += int(batch["counts"].shape[0])
        return total / max(documents, 1)

    def topic_proportions(self, counts: tf.Tensor) -> tf.Tensor:
        """θ = g(E_q[z | n]), the document representation at the posterior mean: `[B, K]`.

        On the simplex for GSM and ProdLDA (the plug-in estimate, not E_q[g(z)]); NVDM's θ = z
        is a real vector, not topic proportions.
        """
        return self.document_topics(self.posterior(counts).loc)

    def serving_signatures(self, batcher) -> dict:
        return {"topics": topics_signature(batcher, self.topic_proportions)}

    def get_config(self):
        return {**super().get_config(), **self.config}


@keras.saving.register_keras_serializable(package="tflv")
class NVDM(NeuralTopicModel):
    """The neural variational document model (Miao et al. 2016): `topic_model="nvdm"`."""
    default_topic_model = "nvdm"


@keras.saving.register_keras_serializable(package="tflv")
class GSM(NeuralTopicModel):
    """The Gaussian softmax topic model (Miao et al. 2017): `topic_model="gsm"`."""
    default_topic_model = "gsm"


@keras.saving.register_keras_serializable(package="tflv")
class ProdLDA(NeuralTopicModel):
    """ProdLDA (Srivastava & Sutton 2017): `topic_model="prodlda"`."""
    default_topic_model = "prodlda"
