"""KL-weight and temperature schedules against their formulas, eagerly and in tf.function."""
import numpy as np
import pytest
import tensorflow as tf

from tflv.vi import schedules

STEPS = np.array([0, 25, 50, 99, 100, 150, 260])


def _all_schedules(step):
    return tf.stack([schedules.linear_kl_weight(step, warmup_steps=100, initial=0.2),
                     schedules.sigmoid_kl_weight(step, midpoint=50.0, rate=0.1),
                     schedules.cyclical_kl_weight(step, cycle_steps=100, ramp_fraction=0.5),
                     schedules.gumbel_temperature(step, initial=2.0, rate=0.01, minimum=0.5)])


def test_schedules_match_their_formulas():
    expected = np.stack([
        np.minimum(1.0, 0.2 + 0.8 * STEPS / 100),
        1.0 / (1.0 + np.exp(-0.1 * (STEPS - 50.0))),
        np.minimum(1.0, (STEPS % 100) / 50.0),
        np.maximum(0.5, 2.0 * np.exp(-0.01 * STEPS))], axis=1)
    compiled = tf.function(_all_schedules, input_signature=[tf.TensorSpec([], tf.int64)])
    for fn in (_all_schedules, compiled):
        got = np.stack([fn(tf.constant(int(t), tf.int64)).numpy() for t in STEPS])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert schedules.cyclical_kl_weight(0, 100) == 0.0  # every cycle restarts from 0
    assert schedules.sigmoid_kl_weight(50, 50.0, 1.0) == 0.5


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.linear_kl_weight(0, warmup_steps=0)
    with pytest.raises(ValueError, match="rate"):
        schedules.sigmoid_kl_weight(0, 10.0, rate=0.0)
    with pytest.raises(ValueError, match="ramp_fraction"):
        schedules.cyclical_kl_weight(0, 10, ramp_fraction=0.0)
    with pytest.raises(ValueError, match="initial >= minimum > 0"):
        schedules.gumbel_temperature(0, initial=1.0, minimum=0.0)


def test_named_kl_weight_is_each_schedule_over_one_warmup_length():
    # T = 100: linear 0 → 1 over T; sigmoid centred at T/2 with slope 10/T; cyclical a ramp over
    # T/2 repeated every T; none 1.
    expected = {"none": np.ones(len(STEPS)),
                "linear": np.minimum(1.0, STEPS / 100),
                "sigmoid": 1.0 / (1.0 + np.exp(-0.1 * (STEPS - 50.0))),
                "cyclical": np.minimum(1.0, (STEPS % 100) / 50.0)}
    assert set(expected) == set(schedules.KL_SCHEDULES)
    for name, want in expected.items():
        got = [float(schedules.kl_weight(name, tf.constant(int(t), tf.int64), 100)) for t in STEPS]
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)
    with pytest.raises(ValueError, match="kl_schedule must be one of none, linear"):
        schedules.kl_weight("cosine", 0, 100)
