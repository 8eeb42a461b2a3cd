"""`tf.distribute` strategy selection for `--strategy=default|mirrored|multi_worker`.

`mirrored` takes every local GPU with no further flag; on a machine without GPUs it mirrors
over the logical CPU devices (see `--num_cpu_devices`), which is how tests exercise it.
`multi_worker` reads the cluster from the `TF_CONFIG` environment variable.

Fault model of `multi_worker` (README.md, "Faults"): every wait on another worker is bounded by
`worker_timeout` seconds: joining the cluster at start (a worker whose peers are gone, e.g. one
restarted alone after the job ended, stops instead of waiting silently), each collective
operation, and the coordination service's heartbeats, by which a killed worker is noticed. The
surviving workers then fail with a `tf.errors.OpError` that the trainer reports as a lost worker
(`is_worker_failure`); restarting every worker resumes from the last checkpoint.
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


def _configure_coordination(cluster_spec, timeout_seconds: float) -> None:
    """Starts TensorFlow's coordination service as `MultiWorkerMirroredStrategy` would, but with
    bounded waits: registration of every task, heartbeats and the shutdown barrier.

    `MultiWorkerMirroredStrategy` configures the service only when none is configured, with
    unbounded (one hour) registration; TensorFlow offers no public setting for these timeouts.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster_spec.num_tasks(job))
            for job in ("chief", "worker") if job in cluster_spec.jobs]
    milliseconds = int(timeout_seconds * 1000)
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster_spec),
        coordinated_jobs=jobs, cluster_register_timeout_in_ms=milliseconds,
        heartbeat_timeout_in_ms=min(milliseconds, 10_000),
        shutdown_barrier_timeout_in_ms=milliseconds)


def is_worker_failure(error: BaseException) -> bool:
    """Whether `error` is how a multi-worker step or start fails when a peer is lost."""
    return isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError,
                              tf.errors.CancelledError, tf.errors.DeadlineExceededError,
                              tf.errors.InternalError, tf.errors.UnknownError))


def make_strategy(name: str, worker_timeout: float = 120.0) -> tf.distribute.Strategy:
    """The strategy called `name`; `worker_timeout` bounds multi-worker waits (seconds)."""
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
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        _configure_coordination(resolver.cluster_spec(), worker_timeout)
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver,
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=worker_timeout))
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
