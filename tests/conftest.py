"""Shared pytest set-up: quiet TensorFlow, two logical CPU devices, seeds, the data root.

Two logical CPU devices are configured before TensorFlow initialises so that tests of
`tf.distribute.MirroredStrategy` run on any machine (no GPU needed). Every test starts from the
same seeds (Python, NumPy, TensorFlow, Keras), so a layer's random initial weights do not depend
on which tests ran before it in the process: a test's outcome is the same alone, in the full
suite and under Bazel (one process per file).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
