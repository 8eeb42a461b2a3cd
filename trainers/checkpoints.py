"""Checkpoints that survive crashes, and a model directory that knows what it holds.

- `tf.train.CheckpointManager` writes each checkpoint under a temporary name and then renames it,
  and rewrites its `checkpoint` index atomically, so a crash mid-save leaves the previous
  checkpoint as the latest readable one.
- `restore_latest` tries the newest checkpoint first and falls back to older ones, naming each
  unreadable (corrupt or truncated) checkpoint it skips.
- `claim_model_dir` records the model, dataset and hyperparameters in `tflv_run.json` (written
  to a temporary file and renamed) and refuses a directory holding a different run.
- Under multi-worker training every worker must take part in saving; only the chief writes to
  `model_dir`, the others to a scratch folder that is removed afterwards.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Callable

import tensorflow as tf
from absl import logging

RUN_FILE = "tflv_run.json"


def untracked_variables(model) -> list:
    """Variables of `model` that `tf.train.Checkpoint(model=model)` would not find.

    Keras 3 keeps some variables (e.g. the seed states of dropout and sampling layers) where
    TensorFlow's object graph does not look; checkpoints and SavedModels attach these
    explicitly, by their stable order.
    """
    tracked = {id(t) for t in tf.train.TrackableView(model).descendants()}
    return [v for v in model.variables if id(v) not in tracked]


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def claim_model_dir(model_dir: str, run: dict,
                    upgrade: Callable[[dict], dict] = lambda held: held) -> None:
    """Records `run` in `model_dir`, or checks that the directory already holds this run.

    `upgrade` maps the run description the directory holds, perhaps written by an older tflv, to
    today's form before the two are compared.

    Raises:
      ValueError: `model_dir` holds checkpoints of another model, dataset or hyperparameters.
    """
    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, RUN_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            held = upgrade(json.load(f))
        if held != run:
            diff = {k: (held.get(k), run.get(k)) for k in set(held) | set(run)
                    if held.get(k) != run.get(k)}
            raise ValueError(
                f"--model_dir={model_dir} holds a different run ({RUN_FILE}: "
                + ", ".join(f"{k}: held {a!r}, asked {b!r}" for k, (a, b) in sorted(diff.items()))
                + "); choose another --model_dir or remove that one")
        return
    if tf.train.latest_checkpoint(model_dir):
        raise ValueError(f"--model_dir={model_dir} holds checkpoints without {RUN_FILE} "
                         "(not written by tflv); choose another --model_dir")
    atomic_write_text(path, json.dumps(run, indent=1, sort_keys=True))


class Checkpoints:
    """A `CheckpointManager` for `checkpoint`, chief-aware for multi-worker training."""

    def __init__(self, checkpoint: tf.train.Checkpoint, model_dir: str, chief: bool = True,
                 worker_id: int = 0, max_to_keep: int = 3):
        self.checkpoint = checkpoint
        self.chief = chief
        self.scratch = os.path.join(model_dir, f".worker{worker_id}")
        self.manager = (tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep)
                        if chief else None)

    def restore_latest(self, model_dir: str) -> str | None:
        """Restores the newest readable checkpoint of `model_dir`; returns its path or None."""
        state = tf.train.get_checkpoint_state(model_dir)
        candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
        for path in candidates:
            try:
                self.checkpoint.read(path).assert_existing_objects_matched()
            except Exception as err:  # noqa: BLE001 — any failure to read means unreadable
                logging.warning("checkpoint %s is unreadable (%s: %s); trying an older one",
                                path, type(err).__name__, str(err).splitlines()[0][:200])
                continue
            logging.info("restored %s", path)
            return path
        if candidates:
            raise ValueError(f"no readable checkpoint in {model_dir} (tried {candidates}); "
                             "remove the directory to start afresh")
        return None

    def save(self, step: int) -> None:
        if self.chief:
            self.manager.save(checkpoint_number=step)
        else:  # takes part in the collective save, then discards its copy
            self.checkpoint.write(os.path.join(self.scratch, "ckpt"))
            shutil.rmtree(self.scratch, ignore_errors=True)
