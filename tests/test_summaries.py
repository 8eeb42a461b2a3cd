"""tflv.summaries: tables and heat maps written to TensorBoard and read back exactly."""
import numpy as np
import pytest
import tensorflow as tf

from tflv import summaries
from tflv.models.hmm_taggers import state_tag_summaries


def written(tmp_path, draw, step=7):
    """The summaries `draw()` writes under a file writer at `step`, read back."""
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=step):
        draw()
    writer.close()
    return summaries.read_events(str(tmp_path))


def image_of(events, tag) -> np.ndarray:
    """The one image of `tag`, as a float array `[H, W]` in [0, 1]."""
    (_, value), = events[tag]
    return tf.io.decode_png(value[2]).numpy()[:, :, 0] / 255.0


def test_text_table_is_markdown(tmp_path):
    events = written(tmp_path, lambda: summaries.text_table(
        "test/topics", ["topic", "words"], [[0, "game team"], [1, "a|b"]]))
    (step, text), = events["test/topics"]
    assert step == 7
    assert text.item().decode() == ("| topic | words |\n| --- | --- |\n| 0 | game team |\n"
                                    "| 1 | a\\|b |")


def test_heatmap_blocks_scale_by_the_largest_entry(tmp_path):
    matrix = np.array([[0.0, 2.0, 4.0], [1.0, 3.0, 0.0]])
    image = image_of(written(tmp_path, lambda: summaries.heatmap("m", matrix, cell=3)), "m")
    assert image.shape == (6, 9)
    expected = np.kron(matrix / 4.0, np.ones((3, 3)))
    np.testing.assert_allclose(image, expected, atol=0.5 / 255)


def test_state_tag_summaries_group_states_by_their_tag(tmp_path):
    # State 0: tags B, B, A (B, 2/3); state 1: A, A (A, 1); state 2: B (B, 1); state 3 unused.
    predicted = np.array([0, 0, 0, 1, 1, 2])
    gold = np.array([1, 1, 0, 0, 0, 1])
    events = written(tmp_path, lambda: state_tag_summaries("test", predicted, gold, ["A", "B"]))
    (_, text), = events["test/state_tags"]
    rows = text.item().decode().splitlines()[2:]
    assert rows == ["| 1 | A | 1.00 | 2 |", "| 2 | B | 1.00 | 1 |", "| 0 | B | 0.67 | 3 |"]
    image = image_of(events, "test/state_tag_confusion")[::8, ::8]  # one pixel per entry
    np.testing.assert_allclose(image, [[1, 0], [0, 1], [1 / 3, 2 / 3]], atol=0.5 / 255)


def test_without_a_writer_nothing_is_written():
    assert not summaries.text_table("t", ["a"], [[1]])
    assert not summaries.heatmap("m", [[1.0]])


@pytest.mark.parametrize("draw, message", [
    (lambda: summaries.text_table("t", ["a", "b"], [[1]]), "needs 2 cells"),
    (lambda: summaries.heatmap("m", [1.0, 2.0]), "matrix"),
    (lambda: summaries.heatmap("m", [[1.0, -1.0]]), ">= 0"),
    (lambda: summaries.heatmap("m", [[np.nan]]), "finite"),
])
def test_bad_input_is_named(draw, message):
    with pytest.raises(ValueError, match=message):
        draw()
