import numpy as np
import pytest

from ns2.eval.studies.aligner import boundaries, boundary_errors_ms, summarize_errors, uniform_durations


def test_one_frame_shift_is_12_5_ms():
    ref = [3, 4, 5, 6]
    pred = [4, 4, 5, 5]  # every inner boundary one frame later
    assert boundary_errors_ms(pred, ref, 80.0).tolist() == [12.5, 12.5, 12.5]
    assert boundary_errors_ms(ref, ref, 80.0).tolist() == [0.0, 0.0, 0.0]
    assert boundary_errors_ms([1, 7, 4, 6], ref, 80.0).tolist() == [25.0, 12.5, 0.0]
    assert boundary_errors_ms(pred, ref, 100.0).tolist() == [10.0, 10.0, 10.0]  # 10 ms frames


def test_word_boundaries_with_no_frames_are_left_out():
    # <sil> a | b c | d <sil>: the two '|' have 0 frames on both sides and add no boundary
    ref = [5, 3, 0, 4, 2, 0, 6, 4]
    pred = [6, 2, 0, 4, 3, 0, 5, 4]
    assert boundaries(ref, [True, True, False, True, True, False, True, True]).tolist() == [5, 8, 12, 14, 20]
    errors = boundary_errors_ms(pred, ref, 80.0)
    assert errors.tolist() == [12.5, 0.0, 0.0, 12.5, 0.0]
    # a token with frames on one side only still counts (its boundary moved)
    assert len(boundary_errors_ms([5, 3, 1, 3, 2, 0, 6, 4], ref, 80.0)) == 6
    # an explicit mask overrides
    keep = [True, True, False, True, True, False, False, True]
    assert boundary_errors_ms(pred, ref, 80.0, keep=keep).tolist() == [12.5, 0.0, 0.0, 12.5]


def test_mismatched_inputs_are_errors():
    with pytest.raises(ValueError, match="same frames"):
        boundary_errors_ms([3, 4], [3, 5], 80.0)
    with pytest.raises(ValueError, match="same phonemes"):
        boundary_errors_ms([3, 4], [3, 4, 0], 80.0)
    with pytest.raises(ValueError, match="keep has 1 entries for 2 tokens"):
        boundary_errors_ms([3, 4], [3, 4], 80.0, keep=[True])


def test_uniform_durations_split_evenly_and_skip_unaligned():
    d = uniform_durations(10, [True, False, True, True])
    assert d == [3, 0, 4, 3] and sum(d) == 10
    for frames, n in [(7, 7), (100, 3), (31, 8), (5, 1)]:
        d = uniform_durations(frames, [True] * n)
        assert sum(d) == frames and max(d) - min(d) <= 1
    with pytest.raises(ValueError, match="no aligned tokens"):
        uniform_durations(10, [False, False])


def test_summary_has_known_answers():
    errors = np.array([0.0, 12.5, 12.5, 25.0, 50.0, 62.5])
    s = summarize_errors(errors, prefix="x/")
    assert s == {"x/median_boundary_error_ms": 18.75, "x/mean_boundary_error_ms": 27.083333333333332,
                 "x/within_20ms": 0.5, "x/within_50ms": 5 / 6, "x/n_boundaries": 6}
    assert summarize_errors([])["median_boundary_error_ms"] is None
