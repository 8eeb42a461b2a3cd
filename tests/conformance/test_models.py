"""Conformance: every registered model trains through the one loop, on one device and on two
mirrored replicas, checkpoints every variable, and exports a SavedModel whose signatures (`score`
and the model's own: sampling, tags, marginals, topics, posteriors, translations, summaries) on
raw text return the in-memory model's numbers (after Sonnet's conformance suite), checked
against references where one is cheap. For one model of each family, a fresh process that
cannot import tflv serves every signature through TensorFlow's `saved_model_cli run` (the
loader of TensorFlow Serving: the SavedModel's restore op) and `tf.saved_model.load` alike.
Edge inputs (no texts, empty texts, one word, unknown words only, empty sources) give finite
numbers, a language model's one-word log p its closed form.

Models are built tiny from their flag defaults, on their fastest dataset.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
import tensorflow as tf

import data
from tflv.models import MODELS, HMMTagger, LatentDirichletAllocation
from tflv.models.topic_models import NeuralTopicModel
from trainers import flags as tflv_flags
from trainers.export import ServingModule, TextBatcher, export_model
from trainers.loop import Trainer
from trainers.strategy import make_strategy

TINY = dict(embed_dim=8, hidden_dim=8, latent_dim=4, num_topics=4, num_states=4,
            num_components=2, num_softmaxes=2, summary_length=2, num_chains=2, num_flows=1,
            iw_samples=2, latent_samples=2, summary_samples=2, attention_samples=2,
            bleu_max_examples=4, beam_size=2, mean_field_iterations=2, sa_vae_steps=1,
            num_templates=3, template_examples=8,
            # neural_template: its most elaborate emission (NTemp+AR, copy scores from a second
            # attention) is the one exported and served
            template_autoregressive=True, template_copy_attention="separate")
FORM_OPTIONS = {"stream": {"seq_len": 8}, "sentences": {"max_length": 10},
                "tokens": {"max_length": 10}, "parallel": {"max_length": 10}}
TEXTS = {"synthetic_hmm": ["s1 s2 s3", "s4"], "ptb": ["the market fell", "stocks rose"],
         "multi30k": ["a dog runs", "two men"], "news20": ["game team", "god xyzzy-unknown"],
         "conll2000": ["the market fell", "stocks rose"],
         "e2e": ["__start_name__ The Vaults __end_name__ __start_eatType__ pub __end_eatType__",
                 "__start_name__ Zizzi __end_name__"]}
TARGETS = ["ein hund läuft", "zwei männer"]
# Inputs of the generation signatures, by argument name (text arguments come from TEXTS).
GENERATION = {"num_samples": 3, "num_points": 3, "max_length": 5, "temperature": 1.0,
              "seed": [1, 2]}


def hparams_for(model_cls):
    values = {name: tflv_flags.FLAGS[name].default for name in tflv_flags.MODEL_FLAGS}
    values.update({k: v for k, v in TINY.items() if k in values})
    return tflv_flags.model_config(model_cls, values)


def setup(name, strategy):
    model_cls = MODELS[name]
    dataset = "synthetic_hmm" if "synthetic_hmm" in model_cls.datasets else model_cls.datasets[0]
    corpus = data.load(dataset)
    form = model_cls.input_form
    batches = corpus.dataset("train", form, 4, shuffle=True, seed=1, repeat=True,
                             **FORM_OPTIONS.get(form, {}))
    trainer = Trainer(lambda: model_cls.from_corpus(corpus, hparams_for(model_cls)), strategy,
                      global_batch_size=4, learning_rate=1e-3, clip_norm=5.0)
    trainer.build(next(iter(batches)))
    return corpus, trainer, batches


# Over ~20 s each on 2 cores (pytest.ini's mark): in the full tier (`make test-all`, Bazel), not
# in `make test` (hmm 31 s, latent_summary 21 s on the idle machine).
SLOW_CONFORMANCE = ("copy_attention", "factorial_hmm", "sentence_vae", "neural_template", "hmm",
                    "latent_summary")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in SLOW_CONFORMANCE else n for n in sorted(MODELS)])
def test_model_conformance(name, tmp_path):
    corpus, trainer, batches = setup(name, tf.distribute.get_strategy())
    model = trainer.model

    # Every variable is reachable by tf.train.Checkpoint(model=...), seed states aside.
    tracked = {id(t) for t in tf.train.TrackableView(model).descendants()}
    missing = [v.path for v in model.variables
               if id(v) not in tracked and "seed_generator" not in v.path]
    assert not missing, f"{name}: variables a checkpoint of the model would miss: {missing}"

    losses = []
    step = trainer._train_step
    for batch in batches.take(2):
        loss, _ = step(batch)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses)) and trainer.step == 2
    if name == "copy_attention":  # switch to copying: translations are the source's words
        model.gate.bias.assign(tf.fill(model.gate.bias.shape, 20.0))

    # SavedModel: score raw text, reload, same numbers. The in-memory calls are of the functions
    # the export traced (`score` and the model's own signatures), not traced once more.
    texts = [tf.constant(TEXTS[corpus.name])]
    if type(model).input_form == "parallel":
        texts.append(tf.constant(TARGETS))
    functions = export_model(model, corpus, str(tmp_path / "export"))
    exported = [v.numpy() for v in model.variables]  # seed states as exported
    in_memory = functions["score"](*texts)
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    served = loaded.signatures["score"](**dict(zip(["text", "target"], texts)))
    assert np.all(np.isfinite(served["log_prob"].numpy()))
    assert np.all(served["log_prob"].numpy() <= 1e-4)  # log-probabilities or lower bounds
    np.testing.assert_allclose(served["tokens"].numpy(), in_memory["tokens"].numpy())
    if not model.stochastic_score:
        np.testing.assert_allclose(served["log_prob"].numpy(), in_memory["log_prob"].numpy(),
                                   rtol=1e-4, atol=1e-4)

    if name in CLI_MODELS:
        check_saved_model_cli(model, exported, functions, corpus, str(tmp_path / "export"),
                              str(tmp_path), executable=name == "prodlda")

    # Every signature the model declares: loaded = in memory (all are deterministic: greedy
    # inference or stateless seeds), then what each one's output must satisfy.
    batcher = TextBatcher(corpus, type(model).input_form)
    declared = model.serving_signatures(batcher)
    assert set(loaded.signatures) == set(functions) == {"serving_default", "score", *declared}
    for signature in declared:
        function = functions[signature]
        inputs = signature_inputs(function, corpus.name)
        expected = function(**inputs)
        outputs = loaded.signatures[signature](**inputs)
        assert set(outputs) == set(expected), signature
        for key, value in outputs.items():
            assert value.dtype == expected[key].dtype and value.shape == expected[key].shape
            if value.dtype == tf.string:
                assert value.numpy().tolist() == expected[key].numpy().tolist(), signature
            else:
                np.testing.assert_allclose(value.numpy(), expected[key].numpy(), rtol=1e-5,
                                           atol=1e-5, err_msg=f"{signature}: {key}")
        CHECKS[signature](model, corpus, batcher, inputs,
                          {k: v.numpy() for k, v in outputs.items()})


def signature_inputs(function, dataset: str) -> dict[str, tf.Tensor]:
    """Arguments for a serving signature, by name: the dataset's texts or GENERATION's values."""
    values = {"text": TEXTS[dataset], "target": TARGETS, **GENERATION}
    return {spec.name: tf.constant(values[spec.name], spec.dtype)
            for spec in function.input_signature}


def words(texts) -> list[list[str]]:
    return [t.decode().split() if isinstance(t, bytes) else t.split() for t in texts]


def check_generated(model, corpus, batcher, inputs, outputs):
    """`sample`, `homotopy`: one text per sample or point, vocabulary words before `<eos>`."""
    rows = inputs["num_samples"] if "num_samples" in inputs else inputs["num_points"]
    assert outputs["text"].shape == (int(rows),)
    vocabulary = set(corpus.vocab.tokens) - {"<eos>", "<pad>"}
    for sample in words(outputs["text"]):
        assert len(sample) <= int(inputs["max_length"]) and set(sample) <= vocabulary, sample


def check_tags(model, corpus, batcher, inputs, outputs):
    """`tag`: the model's decoding in eager mode, 0 at padding."""
    batch = batcher(inputs["text"])
    np.testing.assert_array_equal(outputs["tags"], model.tags(batch["tokens"], batch["mask"]))
    np.testing.assert_array_equal(outputs["lengths"], [len(t.split()) for t in
                                                       TEXTS[corpus.name]])


def check_marginals(model, corpus, batcher, inputs, outputs):
    """`marginals`: distributions over K at real positions (per chain), zero at padding,
    equal to `HMM.posterior_marginals` (HMM) or the mean-field posterior (factorial HMM); a
    one-word sentence's is Bayes' rule, p(z_1 = k | x_1) ∝ π_k E_k[x_1]."""
    batch = batcher(inputs["text"])
    tokens, mask = batch["tokens"], batch["mask"].numpy() > 0
    marginals = outputs["marginals"]
    np.testing.assert_allclose(marginals.sum(-1)[mask], 1.0, atol=1e-5)
    assert np.all(marginals >= 0) and np.all(marginals[~mask] == 0)
    if isinstance(model, HMMTagger):
        hmm, x = model.distribution(tokens)
        reference = hmm.posterior_marginals(x, batch["mask"])[0]
        initial, _, emission = model.logits(tokens)
        lengths = batch["lengths"].numpy()
        assert 1 in lengths  # "s4": the one-word text
        for row in np.flatnonzero(lengths == 1):
            joint = (scipy.special.softmax(initial.numpy())
                     * scipy.special.softmax(emission.numpy(), -1)[:, tokens[row, 0]])
            np.testing.assert_allclose(marginals[row, 0], joint / joint.sum(), atol=1e-5)
    else:
        reference = model.distribution(tokens).mean_field(
            tokens, batch["mask"], model.config["mean_field_iterations"]).marginals
    np.testing.assert_allclose(marginals, reference, atol=1e-5)


def check_topics(model, corpus, batcher, inputs, outputs):
    """`topics`: θ at the posterior mean; proportions on the simplex (GSM, ProdLDA, LDA); for
    LDA, γ = θ (Kα + N) is a fixed point of the E step, γ = α + Σ_v n_v φ_v (Blei et al. 2003)."""
    theta = outputs["theta"]
    counts = batcher(inputs["text"])["counts"]
    assert theta.shape == (len(TEXTS[corpus.name]), model.num_topics if isinstance(
        model, NeuralTopicModel) else model.lda.num_topics)
    if isinstance(model, NeuralTopicModel):
        np.testing.assert_allclose(theta, model.document_topics(model.posterior(counts).loc),
                                   atol=1e-5)
        if model.topic_model == "nvdm":
            return  # θ = z, a real vector
    assert np.all(theta >= 0)
    np.testing.assert_allclose(theta.sum(-1), 1.0, atol=1e-5)
    if isinstance(model, LatentDirichletAllocation):
        lda, n = model.lda, counts.numpy().astype(np.float64)
        alpha = lda.doc_topic_prior
        gamma = theta * (lda.num_topics * alpha + n.sum(-1, keepdims=True))  # [D, K]
        lam = lda.topic_word.numpy()  # [K, V]
        log_beta = scipy.special.digamma(lam) - scipy.special.digamma(lam.sum(-1, keepdims=True))
        log_theta = scipy.special.digamma(gamma) - scipy.special.digamma(
            gamma.sum(-1, keepdims=True))
        phi = scipy.special.softmax(log_theta[:, :, None] + log_beta[None], axis=1)  # [D, K, V]
        np.testing.assert_allclose(alpha + (phi * n[:, None, :]).sum(-1), gamma, atol=1e-2)


def check_posterior(model, corpus, batcher, inputs, outputs):
    """`posterior` (mixture_lm): Bayes' rule, p(z = k | x) = π_k p(x | z = k) / p(x), with the
    model's own log p(x | z = k) table and the exported `score` as log p(x)."""
    batch = batcher(inputs["text"])
    log_joint = (model.log_likelihood_table(batch).numpy()
                 + scipy.special.log_softmax(model.prior_logits.numpy()))
    log_marginal = ServingModule(model, corpus).score(inputs["text"])["log_prob"].numpy()
    np.testing.assert_allclose(outputs["probs"], np.exp(log_joint - log_marginal[:, None]),
                               atol=1e-5)
    np.testing.assert_allclose(outputs["probs"].sum(-1), 1.0, atol=1e-5)


def check_translations(model, corpus, batcher, inputs, outputs):
    """`translate`: the texts `ids_to_text` (the BLEU evaluation's Python path) gives."""
    batch = batcher(inputs["text"])
    ids = model.translate(batch["source"], batch["source_mask"]).numpy()
    expected = model.ids_to_text(ids, batch["source"].numpy(), corpus)
    assert [t.decode() for t in outputs["text"]] == expected
    if hasattr(model, "gate"):  # copy_attention, switched to copying
        for text, source in zip(expected, TEXTS[corpus.name]):
            assert text and set(text.split()) <= set(source.split()), (text, source)


def check_summaries(model, corpus, batcher, inputs, outputs):
    """`summarize`: the greedy pointer's words, each a word of its document (or `<eos>`)."""
    batch = batcher(inputs["text"])
    ids = model.sample_summary(batch, greedy=True).numpy()
    tokens = corpus.vocab.tokens
    for summary, row, text in zip(words(outputs["text"]), ids, TEXTS[corpus.name]):
        expected = []
        for i in row:
            if tokens[i] == "<eos>":
                break
            expected.append(tokens[i])
        assert summary == expected and set(summary) <= set(text.split()), (summary, text)


def check_generate(model, corpus, batcher, inputs, outputs):
    """`generate` (neural_template): the texts `ids_to_text` gives for `fill_templates` over the
    stored templates, which the export extracted from the training data (the new model held
    only placeholders), each word a vocabulary word or a word of its record set."""
    assert not model.holds_placeholder_templates()
    batch = batcher(inputs["text"])
    ids, _, chosen = model.fill_templates(batch["source"], batch["source_mask"],
                                          model.template_table, model.template_lengths)
    expected = model.ids_to_text(ids.numpy(), batch["source"].numpy(), corpus)
    assert [t.decode() for t in outputs["text"]] == expected
    np.testing.assert_array_equal(outputs["template"], chosen.numpy())
    vocabulary = set(corpus.target_vocab.tokens)
    for text, source in zip(expected, TEXTS[corpus.name]):
        assert set(text.split()) <= vocabulary | set(source.split()), text


def check_segment(model, corpus, batcher, inputs, outputs):
    """`segment` (neural_template): the Viterbi segmentation, its segments covering each
    target's tokens and `<eos>` exactly, none longer than L."""
    batch = batcher(inputs["text"], inputs["target"])
    found = model.segment(batch)
    np.testing.assert_array_equal(outputs["states"], found.states.numpy())
    np.testing.assert_array_equal(outputs["ends"], found.ends.numpy())
    lengths = batch["target_lengths"].numpy()
    np.testing.assert_array_equal(outputs["ends"].sum(1), lengths)
    assert outputs["ends"].max() <= model.max_length


CHECKS = {"sample": check_generated, "generate": check_generate, "segment": check_segment, "homotopy": check_generated, "tag": check_tags,
          "marginals": check_marginals, "topics": check_topics, "posterior": check_posterior,
          "translate": check_translations, "summarize": check_summaries}


# A fresh process where tflv, trainers and data cannot be imported serves each call of argv[2]
# (JSON: {argv, dir, signature, inputs, outdir}) twice, writing each output as outdir/KEY.npy:
# through TensorFlow's `saved_model_cli run` (the console script's own `main`, with the call's
# command line; skipped when argv[1] is "python", the executable having run it), which loads the
# SavedModel the way TensorFlow Serving's C++ loader does, into a graph whose variables the
# SavedModel's restore op fills; and through Python's `tf.saved_model.load`, into outdir/python/.
WITHOUT_TFLV = """
import json, os, sys
for name in ("tflv", "trainers", "data"):
    sys.modules[name] = None  # importing them now fails
from tensorflow.python.tools.saved_model_cli import main
calls = json.loads(sys.argv[2])
if sys.argv[1] == "cli":
    for call in calls:
        sys.argv = ["saved_model_cli", *call["argv"]]
        try:
            main()
        except SystemExit as exit:
            if exit.code:
                raise
import numpy as np
import tensorflow as tf
for directory in sorted({call["dir"] for call in calls}):
    loaded = tf.saved_model.load(directory)
    for call in calls:
        if call["dir"] == directory:
            outputs = loaded.signatures[call["signature"]](
                **{k: tf.constant(v) for k, v in call["inputs"].items()})
            os.makedirs(os.path.join(call["outdir"], "python"))
            for key, value in outputs.items():
                np.save(os.path.join(call["outdir"], "python", key + ".npy"), value.numpy())
"""
# One model of each family (language model, VAE, HMM, topic model, translation) also serves
# through `saved_model_cli run`.
CLI_MODELS = ("mixture_lm", "sentence_vae", "hmm", "prodlda", "copy_attention",
              "neural_template")


def literals(inputs: dict[str, tf.Tensor]) -> dict:
    """Tensors as Python values (text as `str`), for a command line or JSON."""
    values = {}
    for name, value in inputs.items():
        values[name] = value.numpy().tolist()
        if value.dtype == tf.string:  # text inputs are vectors
            values[name] = [text.decode() for text in values[name]]
    return values


def saved_model_cli_argv(export_dir, signature, inputs, outdir) -> list[str]:
    """`saved_model_cli run` arguments: `inputs` as `--input_exprs`, outputs as .npy files."""
    exprs = ";".join(f"{name}={value!r}" for name, value in literals(inputs).items())
    return ["run", "--dir", export_dir, "--tag_set", "serve", "--signature_def", signature,
            "--input_exprs", exprs, "--outdir", outdir, "--overwrite"]


def check_saved_model_cli(model, exported, functions, corpus, export_dir, workdir,
                          executable=False):
    """Every signature of the export at `export_dir` (`functions`, {name: tf.function}, as
    `export_model` returns them; `exported`, the model's variable values it holds), in a process
    without tflv, through `saved_model_cli run` (the `saved_model_cli` executable itself, one
    process per signature, when `executable`) and through `tf.saved_model.load`, returns the
    in-memory model's outputs."""
    functions = {k: f for k, f in functions.items() if k != "serving_default"}  # = score
    calls, expected = [], {}
    for signature, function in functions.items():
        inputs = signature_inputs(function, corpus.name)
        for variable, value in zip(model.variables, exported):  # seed states as exported
            variable.assign(value)
        outdir = os.path.join(workdir, signature)
        expected[signature] = {k: v.numpy() for k, v in function(*inputs.values()).items()}
        calls.append({"argv": saved_model_cli_argv(export_dir, signature, inputs, outdir),
                      "dir": export_dir, "signature": signature, "inputs": literals(inputs),
                      "outdir": outdir})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    commands = [[sys.executable, "-c", WITHOUT_TFLV, "python" if executable else "cli",
                 json.dumps(calls)]]
    if executable:
        commands += [[os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
                      *call["argv"]] for call in calls]
    for command in commands:
        proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for signature, outputs in expected.items():
        for key, value in outputs.items():
            for loader in ("", "python"):  # saved_model_cli, tf.saved_model.load
                served = np.load(os.path.join(workdir, signature, loader, key + ".npy"),
                                 allow_pickle=True)
                assert served.shape == value.shape, (signature, loader, key)
                if value.dtype == object:  # strings
                    assert served.tolist() == value.tolist(), (signature, loader, key)
                else:
                    np.testing.assert_allclose(served, value, rtol=1e-5, atol=1e-5,
                                               err_msg=f"{signature} {loader}: {key}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_trains_on_mirrored_replicas(name):
    strategy = make_strategy("mirrored")  # the two logical CPU devices of conftest.py
    _, trainer, batches = setup(name, strategy)
    data_iter = iter(strategy.experimental_distribute_dataset(batches))
    loss, _ = trainer._train_step(next(data_iter))
    assert np.isfinite(float(loss)) and trainer.step == 1


def test_served_edge_inputs(tmp_path):
    """A batch of no texts, empty texts, one-word texts, texts of unknown words only, and
    empty sources, through the loaded signatures: 0 rows, or finite numbers; a language model's
    log p of one word is its closed form, log p(w | <eos>) + log p(<eos> | <eos> w), and of the
    empty text log p(<eos> | <eos>). The HMM's `score`, `tag` and `marginals` take texts of one
    word or none (the forward recursion's T ≤ 1 case, issue 16)."""
    nothing = tf.zeros([0], tf.string)
    for name in ("rnnlm", "prodlda", "copy_attention", "hmm"):
        corpus, trainer, _ = setup(name, tf.distribute.get_strategy())
        model = trainer.model
        export_model(model, corpus, str(tmp_path / name))
        loaded = tf.saved_model.load(str(tmp_path / name))
        parallel = type(model).input_form == "parallel"
        for signature, function in loaded.signatures.items():
            names = set(function.structured_input_signature[1])
            if not names <= {"text", "target"}:
                continue  # generation signatures take no texts
            outputs = function(**{k: nothing for k in names})
            for key, value in outputs.items():
                assert value.shape[0] == 0, (name, signature, key, value.shape)
            texts = ["", "xyzzy-a xyzzy-b", "a"]
            outputs = function(**{k: tf.constant(texts) for k in names})
            for key, value in outputs.items():
                assert value.shape[0] == len(texts), (name, signature, key)
                if value.dtype.is_floating:
                    assert np.all(np.isfinite(value.numpy())), (name, signature, key, value)
            if "log_prob" in outputs:
                assert np.all(outputs["log_prob"].numpy() <= 1e-4), (name, signature)
        if parallel:  # every source empty, real targets
            served = loaded.signatures["score"](text=tf.constant(["", ""]),
                                                target=tf.constant(TARGETS))
            assert np.all(np.isfinite(served["log_prob"].numpy()))
            assert served["tokens"].numpy().tolist() == [len(t.split()) + 1 for t in TARGETS]
            translated = loaded.signatures["translate"](text=tf.constant(["", ""]))["text"]
            assert translated.shape == (2,)
        if name == "rnnlm":
            eos, the = corpus.vocab.encode(["<eos>", "the"])
            logits = model.decoder(tf.constant([[eos, the]]))[0].numpy().astype(np.float64)
            log_p = scipy.special.log_softmax(logits, axis=-1)
            served = loaded.signatures["score"](text=tf.constant(["", "the"]))
            np.testing.assert_allclose(served["log_prob"].numpy(),
                                       [log_p[0, eos], log_p[0, the] + log_p[1, eos]], rtol=1e-5)
            np.testing.assert_allclose(served["tokens"].numpy(), [1, 2])
