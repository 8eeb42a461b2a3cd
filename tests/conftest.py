"""Shared pytest set-up: quiet TensorFlow, one TensorFlow thread per pool under xdist, two logical
CPU devices, seeds, the data root.

Two logical CPU devices are configured before TensorFlow initialises so that tests of
`tf.distribute.MirroredStrategy` run on any machine (no GPU needed). Every test starts from the
same seeds (Python, NumPy, TensorFlow, Keras), so a layer's random initial weights do not depend
on which tests ran before it in the process: a test's outcome is the same alone, in the full
suite and under Bazel (one process per file).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One TensorFlow thread per pool in each xdist worker (and the processes its tests start):
    # `make test` runs a worker per core, and workers whose thread pools each span every core
    # oversubscribe them. Measured on 2 cores: the suite 9 min 35 s → 8 min 15 s, and a
    # 200-draw gradient z-test 55 s → under 3 s (it makes many tiny ops).
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def data_dir():
    """The corpora root (flag-less: env TFLV_DATA_DIR or ../shared/data beside the repository)."""
    from data.paths import resolve_data_dir

    return resolve_data_dir(None)
