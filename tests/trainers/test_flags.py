"""The trainer's flags are validated where absl parses them: a bad value is refused with the
flag's name before anything runs (negative steps or rates trained on with a climbing loss;
`--checkpoint_every=0` and `--log_every=0` died mid-run with a ZeroDivisionError)."""
import pytest
from absl import flags

from trainers.flags import FLAGS


@pytest.mark.parametrize("argument, message", [
    ("--learning_rate=-1", "--learning_rate must be a finite number > 0"),
    ("--learning_rate=0", "--learning_rate must be a finite number > 0"),
    ("--train_steps=-1", "--train_steps must be >= 1"),
    ("--checkpoint_every=0", "--checkpoint_every must be >= 1"),
    ("--log_every=0", "--log_every must be >= 1"),
    ("--batch_size=0", "--batch_size must be >= 1"),
    ("--eval_every=-5", "--eval_every must be >= 0"),
    ("--clip_norm=-1", "--clip_norm must be >= 0"),
    ("--dropout=1.5", "--dropout must be in [0, 1)"),
    ("--seq_len=0", "--seq_len must be >= 1"),
    ("--num_blocks=0", "--num_blocks must be >= 1"),
    ("--state_dropout=1", "--state_dropout must be in [0, 1)"),
])
def test_bad_values_are_refused_naming_the_flag(argument, message):
    try:
        with pytest.raises(flags.IllegalFlagValueError, match=message.replace("[", r"\[")
                           .replace(")", r"\)")):
            FLAGS(["train", argument])
    finally:
        FLAGS.unparse_flags()


def test_good_values_parse():
    try:
        FLAGS(["train", "--learning_rate=1e-3", "--train_steps=1", "--checkpoint_every=1",
               "--eval_every=0", "--clip_norm=0", "--dropout=0.5"])
        assert FLAGS.learning_rate == 1e-3 and FLAGS.clip_norm == 0
    finally:
        FLAGS.unparse_flags()
