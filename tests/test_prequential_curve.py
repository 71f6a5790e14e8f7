"""Accuracy over time at a new site: the prequential running accuracy after each ended pass."""

from __future__ import annotations

import numpy as np
import pytest
from test_online import FUTURE, Recorder, labelled_stream, spy_model

from wmlm.deploy.online import OnlineAdapter
from wmlm.deploy.prequential import prequential_evaluate


def test_running_accuracy_has_one_point_per_pass_and_ends_at_the_overall_accuracy() -> None:
    # the first pass (4 samples) is too short for a window (PAST + FUTURE = 5): no point can be scored yet
    lengths = (4, 8, 6, 9, 7)
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=2, lr=1e-2)
    result = prequential_evaluate(adapter, labelled_stream(pass_lengths=lengths, gap_at=None), label_delay=1)
    windows = result.running_windows()
    assert windows.tolist() == [0, 4, 6, 11, 14]  # cumulative: 0, 4, 2, 5, 3 windows per pass
    for k in (1, 3):
        curve = result.running_accuracy(k)
        assert curve.shape == (len(lengths),)
        assert np.isnan(curve[0]) and not np.isnan(curve[1:]).any()
        assert curve[-1] == pytest.approx(result.accuracy(k), abs=1e-6)
        # each point is the hit rate over the windows of the passes so far, computed directly
        top = result.scores.topk(k, -1).indices
        hits = (top == result.targets[..., None]).any(-1).double().numpy()  # [W, F]
        for n in range(1, len(lengths)):
            chosen = result.pass_number <= n
            assert curve[n] == pytest.approx(hits[chosen].mean(), abs=1e-9)
    assert (result.running_accuracy(3)[1:] >= result.running_accuracy(1)[1:]).all()


def test_running_accuracy_counts_passes_of_this_stream_on_a_used_adapter() -> None:
    """An adapter that already served another stream: its passes are numbered from where it left off."""
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=1)
    prequential_evaluate(adapter, labelled_stream(pass_lengths=(8, 8), gap_at=None))
    again = prequential_evaluate(adapter, labelled_stream(pass_lengths=(9, 7, 8), gap_at=None, seed=1))
    assert again.first_pass == 2 and again.pass_number.min() == 2
    assert again.running_windows().tolist() == [9 - 4, 9 - 4 + 3, 9 - 4 + 3 + 4]
    assert again.running_accuracy(1)[-1] == pytest.approx(again.accuracy(1), abs=1e-6)
    assert again.targets.shape[1] == FUTURE


def test_running_accuracy_of_a_stream_without_windows_is_all_nan() -> None:
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=1)
    result = prequential_evaluate(adapter, labelled_stream(pass_lengths=(3, 4), gap_at=None))
    assert result.running_windows().tolist() == [0, 0]
    assert np.isnan(result.running_accuracy(3)).all() and result.running_accuracy(3).shape == (2,)
