"""`tf.distribute` strategy selection for `--strategy=default|mirrored|multi_worker`.

`mirrored` takes every local GPU with no further flag; on a machine without GPUs it mirrors
over the logical CPU devices (see `--num_cpu_devices`), which is how tests exercise it.
`multi_worker` reads the cluster from the `TF_CONFIG` environment variable.
"""
from __future__ import annotations

import itertools
import json
import os

import tensorflow as tf


def split_cpu(num_devices: int) -> None:
    """Splits the physical CPU into `num_devices` logical devices (before TF initialises)."""
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or []) == num_devices:
        return
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


# Collective key ranges handed to successive MirroredStrategy instances (see `_mirrored`).
_KEY_RANGE = 100_000
_key_bases = itertools.count(1)  # 0 is what a bare MirroredStrategy uses


def _mirrored(devices: list[str]) -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy whose collectives use group keys no earlier strategy used.

    Every MirroredStrategy numbers its collectives from group key 1 + `_collective_key_base`
    (0 unless set), while the runtime keeps each (group, instance) key's parameters for the
    life of the process: a second strategy in one process (a notebook, a test session) would
    reuse the first one's keys, and a gather issued where a reduction had been fails with
    "Collective instance ... expected type". Each strategy built here gets its own key range.
    """
    cls = tf.distribute.MirroredStrategy
    cls._collective_key_base = next(_key_bases) * _KEY_RANGE
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = 0


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy called `name`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return _mirrored([d.name for d in devices])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                             "(cluster and task); see README.md")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown --strategy={name!r}; valid: default, mirrored, multi_worker")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes checkpoints, summaries and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def task_id(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id) if resolver is not None and resolver.task_id is not None else 0
