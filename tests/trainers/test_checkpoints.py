"""Checkpoints and the model directory under damage (issue 18), in-process on a small variable set.

- A lost, empty or garbled `checkpoint` index: the newest readable checkpoint is found from the
  files and the index rewritten (before: a silent restart from step 0 that overwrote the
  checkpoints, or "Invalid checkpoint state" on every restart).
- An unreadable checkpoint newer than the one resumed is moved aside, never overwritten.
- One writer per model directory: a live holder refuses a second one at once; a lock left by a
  killed process is taken over; `ckpt-N_temp` folders of killed saves are removed.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainers.checkpoints import (Checkpoints, ModelDirBusyError, ModelDirLock,
                                  remove_stale_temp_folders)


def make_checkpoint(value=0.0):
    variable = tf.Variable(value)
    return variable, tf.train.Checkpoint(v=variable)


def write_steps(model_dir, steps=(2, 4, 6)):
    variable, checkpoint = make_checkpoint()
    checkpoints = Checkpoints(checkpoint, str(model_dir))
    for step in steps:
        variable.assign(float(step))
        checkpoints.save(step)


@pytest.mark.parametrize("damage", ["missing", "empty", "garbled"])
def test_damaged_index_resumes_the_newest_checkpoint_from_the_files(tmp_path, damage, caplog):
    write_steps(tmp_path)
    index = tmp_path / "checkpoint"
    if damage == "missing":
        index.unlink()
    else:
        index.write_text("" if damage == "empty" else "model_checkpoint_path: {{garbage\n")
    variable, checkpoint = make_checkpoint()
    checkpoints = Checkpoints(checkpoint, str(tmp_path))  # the writer rewrites the index
    assert "rewrote" in caplog.text and "ckpt-2, ckpt-4, ckpt-6" in caplog.text
    assert checkpoints.restore_latest(str(tmp_path)).endswith("ckpt-6")
    assert float(variable.numpy()) == 6.0
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-6")
    # A reader (export, sample, a non-chief worker) finds it from the files as well.
    if damage != "missing":
        index.write_text("")
    reader_variable, reader = make_checkpoint()
    assert Checkpoints(reader, str(tmp_path), chief=False).restore_latest(str(tmp_path))
    assert float(reader_variable.numpy()) == 6.0


def test_unreadable_newer_checkpoint_is_moved_aside_not_overwritten(tmp_path):
    write_steps(tmp_path)
    data_file = next(tmp_path.glob("ckpt-6.data*"))
    damaged = data_file.read_bytes()[:5]
    data_file.write_bytes(damaged)
    (tmp_path / "checkpoint").unlink()
    variable, checkpoint = make_checkpoint()
    checkpoints = Checkpoints(checkpoint, str(tmp_path))
    assert checkpoints.restore_latest(str(tmp_path)).endswith("ckpt-4")
    variable.assign(60.0)
    checkpoints.save(6)  # the resumed run reaches step 6 again
    assert (tmp_path / "unreadable" / data_file.name).read_bytes() == damaged
    _, fresh = make_checkpoint()
    assert Checkpoints(fresh, str(tmp_path)).restore_latest(str(tmp_path)).endswith("ckpt-6")


def test_second_writer_is_refused_and_a_killed_holder_is_stale(tmp_path, caplog):
    lock = ModelDirLock(str(tmp_path)).acquire()
    with pytest.raises(ModelDirBusyError, match=rf"in use by another trainer \(pid {os.getpid()}"):
        ModelDirLock(str(tmp_path)).acquire()
    lock.release()
    assert not (tmp_path / "tflv.lock").exists()
    # A holder that was killed: its pid is gone.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    held = json.loads(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "start": "1",
                                  "since": "then"}))
    (tmp_path / "tflv.lock").write_text(json.dumps(held))
    ModelDirLock(str(tmp_path)).acquire().release()
    assert "took over the stale lock" in caplog.text and str(dead.pid) in caplog.text
    # A live pid that is another process (its start time differs): a reused pid, stale too.
    (tmp_path / "tflv.lock").write_text(json.dumps({**held, "pid": os.getpid(), "start": "0"}))
    ModelDirLock(str(tmp_path)).acquire().release()
    # A holder on another host cannot be checked: refused, naming the lock file to remove.
    (tmp_path / "tflv.lock").write_text(json.dumps({**held, "host": "elsewhere"}))
    with pytest.raises(ModelDirBusyError, match="on host elsewhere.*remove the lock file"):
        ModelDirLock(str(tmp_path)).acquire()


def test_stale_temp_folders_are_removed(tmp_path):
    write_steps(tmp_path, (2,))
    (tmp_path / "ckpt-4_temp" / "part-00000-of-00001").mkdir(parents=True)
    (tmp_path / "ckpt-4_temp" / "part-00000-of-00001" / "x").write_bytes(b"0" * 100)
    remove_stale_temp_folders(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
