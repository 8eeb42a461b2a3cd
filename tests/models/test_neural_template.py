"""neural_template (Wiseman et al. 2018): the objective is the exact log marginal likelihood —
log p(y | x) equals the log-sum over every segmentation and state sequence of log p(y, z | x)
computed step by step by the generation decoder (a separate code path), for the plain and the
autoregressive variant; and a short training on a synthetic record-to-text task whose true
segmentation is known recovers it by Viterbi."""
import collections
import itertools

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp

from tests.training import adam_step
from trainers.flags import as_flags
from tflv.models import get_model_class
from tflv.models.config import ConfigError
from tflv.models.neural_template import (BOS_ID, EOS_ID, SEGMENT_END, UNK_ID, NeuralTemplate,
                                         placeholder_templates, source_structure)

SOURCE = ["<pad>", "<unk>", "<bos>", "<eos>", "__start_name__", "__end_name__",
          "__start_food__", "__end_food__", "Blue", "Spice", "Zizzi", "Aromi", "The", "Mill",
          "Italian", "fast", "food", "French", "Indian"]
TARGET = ["<pad>", "<unk>", "<bos>", "<eos>", "serves", ".", "Blue", "Spice", "Zizzi", "Aromi",
          "The", "Mill", "Italian", "fast", "food", "French", "Indian"]


def build(num_states=3, max_segment_length=2, autoregressive=False, dim=8, **options):
    index = {w: i for i, w in enumerate(TARGET)}
    start_field, marker = source_structure(SOURCE)
    return NeuralTemplate(len(SOURCE), len(TARGET), [index.get(w, -1) for w in SOURCE],
                          start_field, marker, num_states=num_states,
                          max_segment_length=max_segment_length, embed_dim=dim, hidden_dim=dim,
                          autoregressive=autoregressive, beam_size=2, **options)


def example(name, food):
    """Source ids, target ids (with <eos>) and the true segment ends (exclusive) of
    `NAME serves FOOD .`: name | serves | food | . <eos>"""
    source = (["__start_name__"] + name + ["__end_name__", "__start_food__"] + food
              + ["__end_food__"])
    target = name + ["serves"] + food + [".", "<eos>"]
    ends = [len(name), len(name) + 1, len(name) + 1 + len(food), len(target)]
    return ([SOURCE.index(w) for w in source], [TARGET.index(w) for w in target], ends)


def padded_batch(rows):
    """(source ids, target ids, segment ends) rows → (the model's batch, the ends per row)."""
    s, t = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    pad = lambda x, n: x + [0] * (n - len(x))
    source = np.array([pad(r[0], s) for r in rows], np.int32)
    targets = np.array([pad(r[1], t) for r in rows], np.int32)
    inputs = np.array([pad([BOS_ID] + r[1][:-1], t) for r in rows], np.int32)
    return ({"source": source, "source_mask": (source > 0).astype(np.float32),
             "target_inputs": inputs, "target_targets": targets,
             "target_mask": (targets > 0).astype(np.float32)}, [r[2] for r in rows])


def batch_of(pairs):
    return padded_batch([example(n, f) for n, f in pairs])


def compositions(n, most):
    """Every tuple of segment lengths in 1..most summing to n."""
    if n == 0:
        yield ()
        return
    for first in range(1, min(most, n) + 1):
        for rest in compositions(n - first, most):
            yield (first,) + rest


def joints_by_decoder(model, batch, row, segmentations):
    """log p(y, z | x) of one row for each (lengths, states) of `segmentations`, feeding each
    z's tokens (words, ⟨/seg⟩ between segments, the template's end) through the generation
    decoder, all z as one batch."""
    source = batch["source"][row:row + 1]
    encoded = model.encode(source, batch["source_mask"][row:row + 1])
    words = list(batch["target_targets"][row][batch["target_mask"][row] > 0])
    end_id = model.vocab_size + source.shape[1]
    sequences = []
    for lengths, _ in segmentations:
        tokens, position = [], 0
        for i, length in enumerate(lengths):
            tokens += words[position:position + length]
            tokens.append(SEGMENT_END if i < len(lengths) - 1 else end_id)
            position += length
        sequences.append(tokens)
    n, steps = len(sequences), max(map(len, sequences))
    width = max(len(states) for _, states in segmentations)
    templates = tf.constant([list(states) + [-1] * (width - len(states))
                             for _, states in segmentations], tf.int32)
    counts = tf.constant([len(states) for _, states in segmentations], tf.int32)
    rows = tf.nest.map_structure(lambda x: tf.repeat(x, n, axis=0), encoded)
    state = model.decoder_state(rows, templates, counts)
    total = model.template_log_prob(rows["pooled"], templates, counts).numpy().astype(np.float64)
    previous = np.full(n, SEGMENT_END)
    for t in range(steps):
        log_probs, state = model.decode_step(tf.constant(previous, tf.int32), state)
        log_probs = log_probs.numpy()
        for i, tokens in enumerate(sequences):
            if t < len(tokens):
                total[i] += log_probs[i, tokens[t]]
        previous = np.array([tokens[t] if t < len(tokens) else 0 for tokens in sequences])
    return total


@pytest.mark.parametrize(
    "autoregressive, history, copies, self_transitions, uniform_lengths, copy, copy_attention",
    [(False, "words", 1, False, False, "gate", "shared"),
     (True, "words", 1, True, False, "gate", "shared"),
     (False, "words", 2, False, False, "gate", "shared"),
     (True, "words", 2, False, True, "gate", "shared"),
     (True, "fields", 1, False, False, "gate", "shared"),
     (False, "words", 1, False, True, "joint", "shared"),
     (True, "fields", 2, False, True, "joint", "shared"),
     (False, "words", 1, False, False, "gate", "separate"),
     (True, "fields", 1, False, True, "joint", "separate")])
def test_likelihood_is_the_sum_over_segmentations(autoregressive, history, copies,
                                                  self_transitions, uniform_lengths, copy,
                                                  copy_attention):
    """Also with C = 2 copies of each of K = 2 decoders (4 chain states), with and without
    self transitions (forbidden ones have joint probability 0 on the decoder's path too), with
    uniform segment lengths, NTemp+AR over the copied fields, the joint copy softmax, and copy
    scores from a separate attention."""
    tf.keras.utils.set_random_seed(3)
    model = build(num_states=2, max_segment_length=2, autoregressive=autoregressive,
                  history=history, state_copies=copies, self_transitions=self_transitions,
                  uniform_lengths=uniform_lengths, copy=copy, copy_attention=copy_attention)
    batch, _ = batch_of([(["Zizzi"], ["Italian"]), (["Blue", "Spice"], ["French"])])
    nll = model.objective(batch).stats["nll"].numpy()
    for row in range(2):
        n = int(batch["target_mask"][row].sum())
        segmentations = [(lengths, states) for lengths in compositions(n, 2)
                         for states in itertools.product(range(2 * copies),
                                                         repeat=len(lengths))]
        joints = joints_by_decoder(model, batch, row, segmentations)
        repeats = [any(a == b for a, b in zip(z, z[1:])) for _, z in segmentations]
        np.testing.assert_array_equal(np.isneginf(joints),
                                      np.array(repeats) & (not self_transitions))
        np.testing.assert_allclose(-nll[row], logsumexp(joints), rtol=1e-5)


@pytest.mark.parametrize("copy", ["gate", "joint"])
def test_a_separate_copy_attention_tied_to_the_context_attention_is_the_shared_one(copy):
    """copy_attention="separate" with its query and biases set to the context attention's gives
    the shared model's likelihood (every other weight equal); untied, the copy scores differ
    and so does the likelihood."""
    batch, _ = batch_of([(["Zizzi"], ["Italian"]), (["Blue", "Spice"], ["French"])])
    shared = build(num_states=2, copy=copy, uniform_lengths=True)
    separate = build(num_states=2, copy=copy, uniform_lengths=True, copy_attention="separate")
    for model in (shared, separate):
        model.objective(batch)  # builds the weights

    def by_path(model):  # {path without the model's own name: weight}
        return {v.path.removeprefix(model.name + "/"): v for v in model.weights}

    source, target = by_path(shared), by_path(separate)
    assert len(source) == len(shared.weights)
    assert set(target) - set(source) == {"copy_query/kernel", "copy_query_bias"}
    for path, weight in source.items():
        target[path].assign(weight)
    untied = separate.objective(batch).stats["nll"].numpy()
    separate.copy_query.kernel.assign(separate.query.kernel)
    separate.copy_query_bias.assign(separate.query_bias)
    expected = shared.objective(batch).stats["nll"].numpy()
    np.testing.assert_allclose(separate.objective(batch).stats["nll"].numpy(), expected,
                               rtol=1e-6)
    assert np.all(np.abs(untied - expected) > 1e-3), (untied, expected)


def test_field_history_reads_the_fields_a_token_copies():
    """`history="fields"`: a token equal to value words reads the mean embedding of their
    fields (one field's once, however many of its words match), another token field 0's,
    ⟨bos⟩ its word embedding."""
    source = ["__start_name__", "Blue", "Spice", "__end_name__", "__start_food__", "Blue",
              "__end_food__"]
    ids = lambda words, vocab: np.array([[vocab.index(w) for w in words]], np.int32)
    batch = {"source": ids(source, SOURCE), "source_mask": np.ones([1, len(source)], np.float32)}
    model = build(autoregressive=True, history="fields")
    encoded = model.encode(batch["source"], batch["source_mask"])
    read = model.history_embedding(ids(["<bos>", "Blue", "Spice", "serves"], TARGET),
                                   encoded).numpy()[0]
    table = model.field_embedding.embeddings.numpy()
    name, food = (SOURCE.index(f"__start_{f}__") for f in ("name", "food"))
    name, food = model.start_field.numpy()[name], model.start_field.numpy()[food]
    np.testing.assert_allclose(read[0], model.embedding.embeddings.numpy()[BOS_ID])
    np.testing.assert_allclose(read[1], (table[name] + table[food]) / 2, rtol=1e-6)
    np.testing.assert_allclose(read[2], table[name], rtol=1e-6)
    np.testing.assert_allclose(read[3], table[0], rtol=1e-6)


def test_uniform_lengths_are_one_over_L_and_not_learned():
    """`uniform_lengths` gives the likelihood of learned lengths whose logits are all equal
    (log p(l | k) = −log L), which learned ones leave once their logits move; it has no length
    weights to train."""
    batch, _ = batch_of([(["Zizzi"], ["Italian"]), (["Blue", "Spice"], ["French"])])
    tf.keras.utils.set_random_seed(4)
    learned = build(num_states=2, max_segment_length=3)
    tf.keras.utils.set_random_seed(4)
    uniform = build(num_states=2, max_segment_length=3, uniform_lengths=True)
    nll = lambda model: model.objective(batch).stats["nll"].numpy()
    np.testing.assert_allclose(nll(uniform), nll(learned), rtol=1e-6)  # logits start at 0
    np.testing.assert_allclose(uniform.length_log_probs(), np.full((2, 3), -np.log(3)),
                               rtol=1e-6)
    learned.length_logits.assign([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    assert np.abs(nll(learned) - nll(uniform)).min() > 1e-3
    assert "length_logits" not in {w.path.split("/")[-1] for w in uniform.trainable_weights}
    assert "length_logits" in {w.path.split("/")[-1] for w in learned.trainable_weights}


def test_word_context_joins_after_autoregressive_after_training_steps():
    """NTemp+AR with `autoregressive_after=3`: for its first 3 training steps log p(y | x)
    does not depend on the word LSTM (the model is NTemp), after them it does; before and
    after, it is the log-sum of the generation decoder's joints (which gates alike)."""
    tf.keras.utils.set_random_seed(5)
    model = build(num_states=2, autoregressive=True, autoregressive_after=3)
    batch, _ = batch_of([(["Zizzi"], ["Italian"]), (["Blue", "Spice"], ["French"])])
    nll = lambda: model.objective(batch).stats["nll"].numpy()
    n = int(batch["target_mask"][0].sum())
    segmentations = [(lengths, states) for lengths in compositions(n, 2)
                     for states in itertools.product(range(2), repeat=len(lengths))]

    def moved_by_the_word_lstm():
        before = nll()
        np.testing.assert_allclose(-before[0], logsumexp(
            joints_by_decoder(model, batch, 0, segmentations)), rtol=1e-5)
        saved = [w.numpy() for w in model.word_cell.weights]
        for w in model.word_cell.weights:
            w.assign(w + tf.random.normal(w.shape))
        after = nll()
        for w, value in zip(model.word_cell.weights, saved):
            w.assign(value)
        return np.abs(after - before).max()

    nll()  # builds the model
    assert moved_by_the_word_lstm() == 0.0
    for _ in range(2):
        model.objective(batch, training=True)
    assert int(model.step.value) == 2 and moved_by_the_word_lstm() == 0.0
    model.objective(batch, training=True)
    assert int(model.step.value) == 3 and moved_by_the_word_lstm() > 1e-3
    with pytest.raises(ValueError, match="autoregressive_after"):
        build(autoregressive=False, autoregressive_after=3)
    # the trainer's flags: named, never silently dropped
    with pytest.raises(ConfigError, match="needs template_autoregressive") as err:
        NeuralTemplate.Config(template_autoregressive_after=3)
    assert as_flags(err.value).startswith("--template_autoregressive_after needs "
                                          "--template_autoregressive")
    with pytest.raises(ConfigError, match="needs template_autoregressive"):
        NeuralTemplate.Config(template_history="fields")
    assert NeuralTemplate.Config(template_autoregressive=True,
                                 template_autoregressive_after=3).template_autoregressive_after == 3


def test_training_keeps_annotated_spans_whole():
    """With `target_span_lengths`, training's −log-likelihood is the log-sum over the
    segmentations in which every span is one segment (the decoder's joints, enumerated);
    evaluation's is over all of them; Viterbi (`segment`) keeps the spans."""
    tf.keras.utils.set_random_seed(4)
    model = build(num_states=2, max_segment_length=2)
    batch, _ = batch_of([(["Blue", "Spice"], ["fast", "food"])])  # Blue Spice serves fast food .
    spans = [(0, 2), (3, 2), (5, 1)]  # (start, length): the values and `.`
    batch["target_span_lengths"] = np.zeros_like(batch["target_targets"])
    for a, m in spans:
        batch["target_span_lengths"][0, a] = m
    n = int(batch["target_mask"][0].sum())
    segmentations = [(lengths, states) for lengths in compositions(n, 2)
                     for states in itertools.product(range(2), repeat=len(lengths))]
    joints = joints_by_decoder(model, batch, 0, segmentations)
    starts = [tuple(zip(np.cumsum((0,) + lengths)[:-1], lengths)) for lengths, _ in segmentations]
    whole = np.array([all(span in z for span in spans) for z in starts])
    assert 0 < whole.sum() < len(whole)
    trained = model.objective(batch, training=True).stats["nll"].numpy()[0]
    exact = model.objective(batch).stats["nll"].numpy()[0]
    np.testing.assert_allclose(-trained, logsumexp(joints[whole]), rtol=1e-5)
    np.testing.assert_allclose(-exact, logsumexp(joints), rtol=1e-5)
    ends = model.segment(batch).ends.numpy()[0]
    found = np.nonzero(ends)[0]
    kept = set(zip((found - ends[found] + 1).tolist(), ends[found].tolist()))
    assert all(span in kept for span in spans)


FIELDS = {"name": [["Blue", "Spice"], ["Zizzi"], ["Aromi"]],
          "food": [["fast", "food"], ["Italian"], ["French"]],
          "area": [["riverside"], ["city", "centre"]]}
RECORD_SOURCE = (["<pad>", "<unk>", "<bos>", "<eos>"]
                 + [f"__{end}_{f}__" for f in FIELDS for end in ("start", "end")]
                 + sorted({w for values in FIELDS.values() for v in values for w in v}))
RECORD_TARGET = (["<pad>", "<unk>", "<bos>", "<eos>", "."]
                 + sorted({w for values in FIELDS.values() for v in values for w in v}))


def records_task():
    """Every record set of FIELDS, each described by its three values in each of the 6 orders,
    then `. <eos>`: the true segments are the values and `. <eos>` (L = 2). Returns the batch
    and the true segment ends (exclusive) per sentence."""
    rows = []
    for chosen in itertools.product(*FIELDS.values()):
        values = dict(zip(FIELDS, chosen))
        source = [w for f in FIELDS for w in [f"__start_{f}__", *values[f], f"__end_{f}__"]]
        for order in itertools.permutations(FIELDS):
            segments = [values[f] for f in order] + [[".", "<eos>"]]
            rows.append(([RECORD_SOURCE.index(w) for w in source],
                         [RECORD_TARGET.index(w) for s in segments for w in s],
                         list(np.cumsum([len(s) for s in segments]))))
    return padded_batch(rows)


@pytest.mark.slow
def test_viterbi_recovers_the_true_segmentation_after_training():
    """The record values (and `. <eos>`) are the Viterbi segments of 108 sentences after 60
    Adam steps (1/3 of them before training). Measured with these settings: all recovered
    from step 25 to step 200, after which the model starts merging (its likelihood does not
    identify the segmentation; Viterbi of a short training does)."""
    tf.keras.utils.set_random_seed(1)
    index = {w: i for i, w in enumerate(RECORD_TARGET)}
    start_field, marker = source_structure(RECORD_SOURCE)
    model = NeuralTemplate(len(RECORD_SOURCE), len(RECORD_TARGET),
                           [index.get(w, -1) for w in RECORD_SOURCE], start_field, marker,
                           num_states=4, max_segment_length=2, embed_dim=32, hidden_dim=32)
    batch, true_ends = records_task()
    recovered = lambda found: np.mean([list(np.nonzero(row)[0] + 1) == ends
                                       for row, ends in zip(found.ends.numpy(), true_ends)])
    segment = tf.function(model.segment)  # Viterbi in a graph, as the trainer runs it
    before = recovered(segment(batch))
    step = adam_step(model, 0.005)
    first = float(step(batch))
    for _ in range(60):
        last = float(step(batch))
    assert last < first / 2
    assert before < 0.5 and recovered(segment(batch)) >= 0.9

    # templates: the Viterbi state sequences; generation fills the most frequent one with one
    # segment per state (⟨/seg⟩ markers between them), each of 1..L words
    counts, first = model.templates([{k: tf.constant(v) for k, v in batch.items()}])
    assert sum(counts.values()) == len(true_ends)
    template = counts.most_common(1)[0][0]
    assert len(template) == 4 and template in first
    table = tf.constant([template], tf.int32)
    ids, score, chosen = model.fill_templates(batch["source"][:6], batch["source_mask"][:6],
                                              table, tf.constant([len(template)]))
    end_id = model.vocab_size + batch["source"].shape[1]
    assert np.all(np.isfinite(score.numpy())) and np.all(chosen.numpy() == 0)
    for row in ids.numpy():
        row = list(row[:list(row).index(end_id)])  # the template's end closes every row
        segments = " ".join(map(str, row)).split(f" {SEGMENT_END} ")
        assert len(segments) == len(template)
        assert all(1 <= len(piece.split()) <= 2 for piece in segments), row


def test_registered():
    assert get_model_class("neural_template") is NeuralTemplate


def test_generation_in_a_graph_retraced_for_a_wider_record_set():
    # The trainer's evaluation calls `tf.function(fill_templates, reduce_retracing=True)` on
    # batches of record sets of different widths: the retraced graph (width unknown, rows
    # known) once failed tf.while_loop's shape check ("enters the loop with shape (96, 3), but
    # has shape (None, 3)"). Both calls must give the eager generations.
    model = build(num_states=4)
    narrow, _ = batch_of([(["Blue", "Spice"], ["Italian"])] * 4)
    wide, _ = batch_of([(["The", "Mill"], ["fast", "food"])] * 4)
    model.objective(narrow)
    model.set_templates([(0, 1, 2), (1, 2), (3, 0, 1, 2)])
    fill = tf.function(model.fill_templates, reduce_retracing=True)
    for batch in (narrow, wide):
        args = (batch["source"], batch["source_mask"], model.template_table,
                model.template_lengths)
        for got, expected in zip(fill(*args), model.fill_templates(*args)):
            np.testing.assert_array_equal(got.numpy(), expected.numpy())


def replayed_score(model, source, mask, template, ids):
    """Wiseman et al.'s score of one realisation ids (⟨/seg⟩ markers, the end id) of template,
    replayed token by token through `decode_step`: log p(z | x) / |z| + log p(y | z, x) / n,
    n the tokens (words, markers and the end)."""
    encoded = model.encode(source[None], mask[None])
    table = tf.constant([list(template)], tf.int32)
    count = tf.constant([len(template)], tf.int32)
    state = model.decoder_state(encoded, table, count)
    words, previous = 0.0, SEGMENT_END
    for token in ids:
        log_probs, state = model.decode_step(tf.constant([previous], tf.int32), state)
        words += float(log_probs[0, token])
        previous = token
    path = float(model.template_log_prob(encoded["pooled"], table, count)[0])
    return path / len(template) + words / len(ids)


def test_generation_is_well_formed_and_picks_the_best_normalised_template():
    """Every generation closes its template's last segment with `<eos>` and nothing else
    (no `<eos>` inside, no `<unk>`), and the chosen template is the one whose realisation
    has the highest length-normalised score, which equals the score replayed step by step."""
    tf.keras.utils.set_random_seed(3)
    model = build(num_states=4)
    batch, _ = batch_of([(["Blue", "Spice"], ["Italian"]), (["The", "Mill"], ["fast", "food"]),
                         (["Zizzi"], ["French"]), (["Aromi"], ["Indian"])])
    model.objective(batch)
    templates = [(0, 1, 2), (1, 2), (3, 0, 1, 2), (2, 3)]
    source, mask = batch["source"], batch["source_mask"]
    end_id = model.vocab_size + source.shape[1]
    alone = np.stack([model.fill_templates(source, mask, tf.constant([t]),
                                           tf.constant([len(t)]))[1].numpy()
                      for t in templates], axis=1)  # [B, M]
    width = max(map(len, templates))
    table = tf.constant([list(t) + [-1] * (width - len(t)) for t in templates])
    ids, score, chosen = model.fill_templates(source, mask, table,
                                              tf.constant([len(t) for t in templates]))
    np.testing.assert_array_equal(chosen.numpy(), alone.argmax(axis=1))
    np.testing.assert_allclose(score.numpy(), alone.max(axis=1), rtol=1e-5)
    for row, (generated, best) in enumerate(zip(ids.numpy(), chosen.numpy())):
        tokens = list(generated[:list(generated).index(end_id) + 1])
        assert tokens[-2] == EOS_ID and EOS_ID not in tokens[:-2] and UNK_ID not in tokens
        assert tokens.count(SEGMENT_END) == len(templates[best]) - 1
        np.testing.assert_allclose(
            replayed_score(model, source[row], mask[row], templates[best], tokens),
            score.numpy()[row], rtol=1e-4)


def stored_templates(model):
    return [tuple(row[:n]) for row, n in zip(model.template_table.numpy(),
                                             model.template_lengths.numpy())]


class Corpus:
    """The corpus `prepare_export` reads: `splits`, one training batch, target vocabulary."""

    def __init__(self, batch=None):
        self.splits = {"test": None} if batch is None else {"train": None, "test": None}
        self.batch = batch
        self.target_vocab = type("Vocab", (), {"tokens": TARGET})

    def dataset(self, split, form, batch_size):
        assert (split, form) == ("train", "parallel")
        return tf.data.Dataset.from_tensors(self.batch)


def test_export_stores_the_most_frequent_viterbi_templates_where_the_model_holds_none():
    # A run's checkpoints are saved during training, before any evaluation extracts the
    # templates, and `tflv-export` of a run exported `generate` filling the placeholder
    # templates (states 0 1 2 3 4 5, 1 2 3 4 5 6, ...): `export_saved_model` now calls
    # `prepare_export` first (and the conformance test checks the export serves them).
    names = [["Blue", "Spice"], ["Zizzi"], ["The", "Mill"], ["Aromi"]]
    foods = [["Italian"], ["fast", "food"], ["French"], ["Indian"]]
    batch, _ = batch_of([(n, f) for n in names for f in foods])
    model = build(num_states=4, num_templates=3, template_examples=0)
    model.objective(batch)
    np.testing.assert_array_equal(model.template_table.numpy(),
                                  placeholder_templates(3, model.template_table.shape[1], 4))
    assert model.holds_placeholder_templates()
    found = model.segment(batch)
    counts = collections.Counter(tuple(states[ends > 0]) for states, ends in
                                 zip(found.states.numpy(), found.ends.numpy()))
    top = [t for t, _ in counts.most_common(3)]
    model.prepare_export(Corpus(batch))
    assert stored_templates(model) == top + [top[-1]] * (3 - len(top))
    assert not model.holds_placeholder_templates()
    # templates set by hand are what is exported; none, and no training data: an error
    model.set_templates([(1, 0, 2), (3,)])
    model.prepare_export(Corpus())
    assert stored_templates(model) == [(1, 0, 2), (3,), (3,)]
    fresh = build(num_states=4, num_templates=3)
    fresh.objective(batch)
    with pytest.raises(ValueError, match="no training split"):
        fresh.prepare_export(Corpus())
