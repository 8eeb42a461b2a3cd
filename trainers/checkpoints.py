"""Checkpoints that survive crashes, and a model directory that knows what it holds.

- `tf.train.CheckpointManager` writes each checkpoint under a temporary name and then renames it,
  and rewrites its `checkpoint` index atomically, so a crash mid-save leaves the previous
  checkpoint as the latest readable one.
- `restore_latest` tries the newest checkpoint first and falls back to older ones, naming each
  unreadable (corrupt or truncated) checkpoint it skips. It finds the checkpoints from the files
  themselves (`ckpt-N.index`), so a lost, empty or garbled `checkpoint` index neither restarts
  training from step 0 (which then overwrote ckpt-20, 40, 60 …) nor fails every restart; the
  writer rewrites the index from the files and says so. A newer checkpoint that cannot be read is
  moved to `unreadable/` rather than overwritten by the resumed run.
- `ModelDirLock`: one writer per model directory. The lock file `tflv.lock` (pid, host, process
  start time) is created atomically; a second trainer is refused at once naming the holder; a
  lock whose process is gone (killed) is stale and taken over. Under the lock, `ckpt-N_temp`
  folders of saves that were killed midway are removed.
- `trainers.run_record.claim_model_dir` records the run in `tflv_run.json` and refuses a
  directory holding a different run.
- Under multi-worker training every worker must take part in saving; only the chief writes to
  `model_dir`, the others to a scratch folder that is removed afterwards.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import socket
import time

import tensorflow as tf
from absl import logging

LOCK_FILE = "tflv.lock"
UNREADABLE_DIR = "unreadable"
_CHECKPOINT = re.compile(r"ckpt-(\d+)\.index")
_TEMP = re.compile(r"ckpt-\d+_temp.*")


def untracked_variables(model) -> list:
    """Variables of `model` that `tf.train.Checkpoint(model=model)` would not find.

    Keras 3 keeps some variables (e.g. the seed states of dropout and sampling layers) where
    TensorFlow's object graph does not look; checkpoints and SavedModels attach these
    explicitly, by their stable order.
    """
    tracked = {id(t) for t in tf.train.TrackableView(model).descendants()}
    return [v for v in model.variables if id(v) not in tracked]


def checkpoint_files(model_dir: str) -> list[str]:
    """The checkpoints `ckpt-N` of `model_dir` found from their `.index` files, newest first."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    numbers = [int(m.group(1)) for name in tf.io.gfile.listdir(model_dir)
               if (m := _CHECKPOINT.fullmatch(name.rstrip("/")))]
    return [os.path.join(model_dir, f"ckpt-{n}") for n in sorted(numbers, reverse=True)]


def _normalized(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def read_index(model_dir: str) -> tuple[list[str], str | None]:
    """The checkpoints the `checkpoint` index lists (newest first), and what is wrong with the
    index: None, or "missing", "empty or invalid", "unparsable" …"""
    path = os.path.join(model_dir, "checkpoint")
    if not tf.io.gfile.exists(path):
        return [], "missing"
    try:
        state = tf.train.get_checkpoint_state(model_dir)
    except Exception as err:  # noqa: BLE001 — an empty index raises "Invalid checkpoint state"
        return [], f"unreadable ({str(err).splitlines()[0][:120]})"
    if state is None or not state.model_checkpoint_path:
        return [], "unparsable or empty"
    return list(reversed(state.all_model_checkpoint_paths)), None


class Checkpoints:
    """A `CheckpointManager` for `checkpoint`, chief-aware for multi-worker training.

    The chief (the writer, holding `ModelDirLock`) first rewrites a missing, empty or garbled
    `checkpoint` index from the checkpoint files, so that the manager knows every checkpoint.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, model_dir: str, chief: bool = True,
                 worker_id: int = 0, max_to_keep: int = 3):
        """`chief=False`: a reader (export, sampling) or a non-chief worker; it writes nothing
        to `model_dir` (a worker saves to its scratch folder `.worker{worker_id}`)."""
        self.checkpoint = checkpoint
        self.chief = chief
        self.model_dir = model_dir
        self.max_to_keep = max_to_keep
        self.scratch = os.path.join(model_dir, f".worker{worker_id}")
        self.manager = None
        if chief:
            _, problem = read_index(model_dir)
            if problem is not None and problem != "missing" or \
                    problem == "missing" and checkpoint_files(model_dir):
                self._index_from_files(f"the checkpoint index was {problem}")
            self.manager = tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep)

    def _index_from_files(self, reason: str) -> None:
        """Rewrites the `checkpoint` index to list the checkpoint files, oldest first."""
        names = [os.path.basename(path) for path in reversed(checkpoint_files(self.model_dir))]
        index = os.path.join(self.model_dir, "checkpoint")
        if names:
            tf.compat.v1.train.update_checkpoint_state(self.model_dir, names[-1], names)
        elif tf.io.gfile.exists(index):
            tf.io.gfile.remove(index)
        logging.warning("%s; rewrote %s from the checkpoint files (%s)", reason, index,
                        ", ".join(names) or "none")

    def restore_latest(self, model_dir: str) -> str | None:
        """Restores the newest readable checkpoint of `model_dir`; returns its path or None.

        Candidates are the checkpoints the index lists and those found from the files, newest
        first; with a missing or broken index the files alone are used (and that is logged).
        """
        listed, problem = read_index(model_dir)
        files = checkpoint_files(model_dir)
        if problem is not None and files:
            logging.warning("the checkpoint index in %s is %s; resuming from the checkpoint "
                            "files (%s)", model_dir, problem,
                            ", ".join(os.path.basename(p) for p in files))
        number = lambda path: int(path.rsplit("-", 1)[-1])
        candidates = sorted({_normalized(p) for p in listed + files}, key=number, reverse=True)
        skipped = []
        for path in candidates:
            try:
                self.checkpoint.read(path).assert_existing_objects_matched()
            except Exception as err:  # noqa: BLE001 — any failure to read means unreadable
                logging.warning("checkpoint %s is unreadable (%s: %s); trying an older one",
                                path, type(err).__name__, str(err).splitlines()[0][:200])
                skipped.append(path)
                continue
            logging.info("restored %s", path)
            if self.chief:
                self._set_aside(skipped)
            return path
        if candidates:
            raise ValueError(f"no readable checkpoint in {model_dir} (tried {candidates}); "
                             "remove the directory to start afresh")
        return None

    def _set_aside(self, paths: list[str]) -> None:
        """Moves the files of unreadable checkpoints newer than the one restored to
        `unreadable/`, so that the resumed run never overwrites them."""
        if not paths:
            return
        aside = os.path.join(self.model_dir, UNREADABLE_DIR)
        tf.io.gfile.makedirs(aside)
        for path in paths:
            for name in tf.io.gfile.glob(path + ".*"):
                tf.io.gfile.rename(name, os.path.join(aside, os.path.basename(name)),
                                   overwrite=True)
        self._index_from_files("moved the unreadable checkpoint(s) "
                               + ", ".join(os.path.basename(p) for p in paths) + f" to {aside}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.model_dir,
                                                  self.max_to_keep)

    @property
    def latest(self) -> str | None:
        """The newest checkpoint this writer knows (None on other workers, or before any)."""
        return self.manager.latest_checkpoint if self.manager is not None else None

    def save(self, step: int) -> None:
        if self.chief:
            self.manager.save(checkpoint_number=step)
        else:  # takes part in the collective save, then discards its copy
            shutil.rmtree(self.scratch, ignore_errors=True)  # what a killed worker left
            self.checkpoint.write(os.path.join(self.scratch, "ckpt"))
            shutil.rmtree(self.scratch, ignore_errors=True)


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, Linux), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    """Whether process `pid` runs, and is the one that started at `start` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return start is None or _process_start(pid) in (None, start)


class ModelDirLock:
    """One writer per model directory: the lock file `model_dir/tflv.lock`.

    `acquire` creates the file atomically (written under a temporary name, then hard-linked to
    its name, which fails if it exists) holding the pid, host and process start time. A lock
    held by a live process is refused at once with `ModelDirBusyError` naming it. A lock left by
    a process that is gone (on this host) is stale: it is taken over and that is logged. A lock
    from another host cannot be checked: the message says which file to remove if that run is
    over. `release` (also at interpreter exit) removes the file. A directory that is not local
    (`gs://…`) is not locked (logged).
    """

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self.held = False

    def _holder(self) -> dict | None:
        """The lock file's holder; None without a lock file, {} for an unreadable one (no live
        tflv wrote it: the file appears whole, by a link)."""
        return self._read(self.path) if os.path.exists(self.path) else None

    def acquire(self) -> "ModelDirLock":
        if "://" in self.model_dir:
            logging.warning("--model_dir=%s is not a local directory: it is not locked against a "
                            "second trainer", self.model_dir)
            return self
        os.makedirs(self.model_dir, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "start": _process_start(os.getpid()), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        tmp = f"{self.path}.{me['pid']}"
        with open(tmp, "w") as f:
            json.dump(me, f)
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                    self.held = True
                    atexit.register(self.release)
                    return self
                except FileExistsError:
                    pass
                holder = self._holder()
                if holder is None:
                    continue  # released meanwhile
                self._take_over_if_stale(holder, me)
            raise ModelDirBusyError(f"could not take the lock {self.path}")
        finally:
            os.remove(tmp)

    def _take_over_if_stale(self, holder: dict, me: dict) -> None:
        """Removes the lock file of `holder` if its process is gone; else raises."""
        pid, host = holder.get("pid"), holder.get("host")
        if holder and host != me["host"]:
            raise ModelDirBusyError(
                f"--model_dir={self.model_dir} is in use by pid {pid} on host {host} (since "
                f"{holder.get('since')}; lock file {self.path}). One model directory takes one "
                "trainer: wait for it, choose another --model_dir, or remove the lock file if "
                "that run is over")
        if holder and isinstance(pid, int) and _alive(pid, holder.get("start")):
            raise ModelDirBusyError(
                f"--model_dir={self.model_dir} is in use by another trainer (pid {pid} on this "
                f"host, since {holder.get('since')}; lock file {self.path}). One model "
                "directory takes one trainer: wait for it or choose another --model_dir")
        stale = f"{self.path}.stale-{me['pid']}"
        try:
            os.rename(self.path, stale)  # atomic: one of several contenders moves it
        except FileNotFoundError:
            return
        if self._read(stale) != holder:  # moved a fresh lock taken meanwhile: put it back
            os.rename(stale, self.path)
            raise ModelDirBusyError(f"--model_dir={self.model_dir} was just taken by another "
                                    f"trainer (lock file {self.path})")
        os.remove(stale)
        logging.warning("took over the stale lock %s of pid %s on %s (that process is gone)",
                        self.path, pid, host)

    @staticmethod
    def _read(path: str) -> dict:
        try:
            with open(path) as f:
                held = json.load(f)
            return held if isinstance(held, dict) else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        """Removes the lock file if this process holds it."""
        if self.held:
            holder = self._read(self.path) or {}
            if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
                os.remove(self.path)
        self.held = False


class ModelDirBusyError(RuntimeError):
    """A second trainer on a model directory that a live trainer holds."""


def remove_stale_temp_folders(model_dir: str) -> None:
    """Removes `ckpt-N_temp…` folders that a save killed midway left behind (call under the lock:
    no save is running)."""
    if not tf.io.gfile.isdir(model_dir):
        return
    stale = [name.rstrip("/") for name in tf.io.gfile.listdir(model_dir)
             if _TEMP.fullmatch(name.rstrip("/"))]
    for name in stale:
        tf.io.gfile.rmtree(os.path.join(model_dir, name))
    if stale:
        logging.warning("removed %s, left in %s by save(s) killed midway", ", ".join(stale),
                        model_dir)
