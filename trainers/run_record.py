"""The run record of a model directory: what fixes the meaning of its weights and data position.

`tflv_run.json` holds the model, the dataset and its options, the model hyperparameters, the
batch size, the seed, the sequence settings of the training input (`seq_len` of a stream,
`max_length` of sentences) and the size of the training split. The vocabularies the weights are
indexed by are saved beside it, one token per line (`vocab/vocab.txt`, and where the corpus has
them `source_vocab.txt`, `target_vocab.txt`, `pos_vocab.txt`, `chunk_vocab.txt`).

A resumed run must agree on all of these: a changed batch size, seed or sequence length would
change which batch comes next; a changed vocabulary (one appended line renumbered 9,936 of PTB's
10,002 ids) would pair the embeddings with other words. `claim_model_dir` refuses such a resume
with the list of differences. The optimisation settings (`training`: `--learning_rate`,
`--learning_rate_schedule`, `--clip_norm`, `--train_steps`) are recorded too but may change on
resume (a run stopped by a non-finite step is rerun with a lower learning rate); so may logging,
checkpoint and evaluation intervals, `--strategy` and `--export_dir`, which are not recorded.
Export and sampling rebuild the model from the record and the saved vocabularies, whatever the
data root holds now (`load_run_vocab`, `with_run_vocab`).

#### References
No mathematics here.
"""
from __future__ import annotations

import copy
import json
import os
from typing import Callable

import tensorflow as tf
from absl import logging

from data.vocab import Vocabulary

RUN_FILE = "tflv_run.json"
VOCAB_DIR = "vocab"
VOCABULARIES = ("vocab", "source_vocab", "target_vocab", "pos_vocab", "chunk_vocab")
# `Corpus.info` entries that are the size of a vocabulary.
_SIZES = {"vocab": ("vocab_size",), "source_vocab": ("source_vocab_size",),
          "target_vocab": ("target_vocab_size",), "pos_vocab": ("num_tags",),
          "chunk_vocab": ("num_chunks",)}
MAY_CHANGE = "training"  # the record's entry that a resume may change


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def corpus_vocabularies(corpus) -> dict[str, Vocabulary]:
    """The vocabularies of `corpus` by attribute name (those it has)."""
    return {name: getattr(corpus, name) for name in VOCABULARIES
            if getattr(corpus, name, None) is not None}


def save_run_vocab(model_dir: str, corpus) -> list[str]:
    """Writes the vocabularies of `corpus` to `model_dir/vocab/NAME.txt`; returns their names."""
    folder = os.path.join(model_dir, VOCAB_DIR)
    tf.io.gfile.makedirs(folder)
    vocabularies = corpus_vocabularies(corpus)
    for name, vocab in vocabularies.items():
        atomic_write_text(os.path.join(folder, f"{name}.txt"), vocab.to_text())
    return sorted(vocabularies)


def load_run_vocab(model_dir: str) -> dict[str, Vocabulary]:
    """The vocabularies saved in `model_dir` by name ({} for a run recorded before tflv saved
    them)."""
    vocabularies = {}
    for name in VOCABULARIES:
        path = os.path.join(model_dir, VOCAB_DIR, f"{name}.txt")
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as f:
                vocabularies[name] = Vocabulary.from_text(f.read(), path)
    return vocabularies


def vocabulary_differences(saved: dict[str, Vocabulary], corpus) -> list[str]:
    """How the vocabularies of `corpus` differ from `saved`, one line per vocabulary."""
    now = corpus_vocabularies(corpus)
    lines = []
    for name in sorted(set(saved) | set(now)):
        held, current = saved.get(name), now.get(name)
        if held is None or current is None:
            lines.append(f"{name}: {'saved' if held else 'not saved'} in the run, "
                         f"{'present' if current else 'absent'} in the data")
            continue
        if held.tokens == current.tokens:
            continue
        old, new = held.tokens, current.tokens
        renumbered = sum(1 for i, token in enumerate(new) if token in held and old.index(token) != i)
        added = [t for t in new if t not in held]
        gone = [t for t in old if t not in current]
        lines.append(f"{name}: {len(old)} ids saved, {len(new)} in the data now; {renumbered} "
                     f"words renumbered; new words {added[:5]}{' …' if len(added) > 5 else ''}; "
                     f"words gone {gone[:5]}{' …' if len(gone) > 5 else ''}")
    return lines


def with_run_vocab(corpus, saved: dict[str, Vocabulary]):
    """`corpus` whose vocabularies (and their sizes in `info`) are the `saved` ones, for a model
    rebuilt from a run whose data has changed since (export, sampling). Its datasets still come
    from the data as it is now: use it for the vocabularies only."""
    changed = copy.copy(corpus)
    changed.vocabulary_differences = vocabulary_differences(saved, corpus)  # data ≠ vocabulary
    changed.info = dict(corpus.info)
    for name, vocab in saved.items():
        setattr(changed, name, vocab)
        for key in _SIZES[name]:
            if key in changed.info:
                changed.info[key] = len(vocab)
    return changed


def _fixed(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != MAY_CHANGE}


def claim_model_dir(model_dir: str, run: dict, corpus=None,
                    upgrade: Callable[[dict], dict] = lambda held: held) -> None:
    """Records `run` (and the vocabularies of `corpus`) in `model_dir`, or checks that the
    directory already holds this run.

    `upgrade` maps the run description the directory holds, perhaps written by an older tflv, to
    today's form before the two are compared; an entry the held record lacks (written before tflv
    recorded it) is taken from `run`, and logged. The record is rewritten with today's `training`
    settings (which may change) and any entries it lacked.

    Raises:
      ValueError: `model_dir` holds checkpoints of another model, dataset, hyperparameters,
        batch size, seed, sequence settings, training data or vocabulary (all differences listed).
    """
    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, RUN_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            recorded = json.load(f)
        held = upgrade(recorded)
        missing = [k for k in run if k not in held and k != MAY_CHANGE]
        if missing:
            logging.warning("%s was written before tflv recorded %s; taking this run's %s", path,
                            ", ".join(missing), ", ".join(f"{k}={run[k]!r}" for k in missing))
            held = {**held, **{k: run[k] for k in missing}}
        differences = [f"{k}: held {held.get(k)!r}, asked {run.get(k)!r}"
                       for k in sorted(set(_fixed(held)) | set(_fixed(run)))
                       if held.get(k) != run.get(k)]
        saved = load_run_vocab(model_dir)
        if corpus is not None and saved:
            differences += vocabulary_differences(saved, corpus)
        if differences:
            raise ValueError(
                f"--model_dir={model_dir} holds a different run ({RUN_FILE}: "
                + "; ".join(differences) + "). Resuming would change what its weights or its "
                "data position mean; restore those settings or data, or choose another "
                "--model_dir. (May change on resume: --train_steps, --learning_rate, "
                "--learning_rate_schedule, --clip_norm, logging, checkpoint and evaluation "
                "intervals, --strategy, --export_dir.)")
        if held.get(MAY_CHANGE) not in (None, run.get(MAY_CHANGE)):
            logging.warning("resuming with %s (was %s)", run.get(MAY_CHANGE), held[MAY_CHANGE])
        if corpus is not None and not saved:
            logging.warning("%s saved no vocabulary (written by an older tflv); saving the "
                            "data's now", model_dir)
            save_run_vocab(model_dir, corpus)
        updated = {**held, MAY_CHANGE: run.get(MAY_CHANGE)}
        if updated != recorded:
            atomic_write_text(path, json.dumps(updated, indent=1, sort_keys=True))
        return
    if tf.train.latest_checkpoint(model_dir) or tf.io.gfile.glob(
            os.path.join(model_dir, "ckpt-*.index")):
        raise ValueError(f"--model_dir={model_dir} holds checkpoints without {RUN_FILE} "
                         "(not written by tflv); choose another --model_dir")
    if corpus is not None:
        save_run_vocab(model_dir, corpus)
    atomic_write_text(path, json.dumps(run, indent=1, sort_keys=True))
