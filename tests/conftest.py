"""Shared pytest set-up: quiet TensorFlow, two logical CPU devices, the data root.

Two logical CPU devices are configured before TensorFlow initialises so that tests of
`tf.distribute.MirroredStrategy` run on any machine (no GPU needed).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(scope="session")
def data_dir():
    """The corpora root (flag-less: env TFLV_DATA_DIR or ../shared/data beside the repository)."""
    from data.paths import resolve_data_dir

    return resolve_data_dir(None)
