"""What the gradient-free site learners of online serving (the beam prior and the nearest-neighbour
memory) share: nothing is used before a pass ends, and a site rule the model never saw is served after a
few passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_online import FUTURE, PAST, Recorder, labelled_stream, spy_model

from wmlm.deploy.online import OnlineAdapter, Sample
from wmlm.deploy.prequential import LabelledSample, prequential_evaluate

LEARNERS = [{"site_prior": 5.0}, {"site_memory": 0.3}, {"site_prior": 5.0, "site_memory": 0.3}]


@pytest.mark.parametrize("learner", LEARNERS, ids=["prior", "memory", "prior+memory"])
def test_site_learners_learn_from_ended_passes_only(learner: dict[str, float]) -> None:
    stream = labelled_stream(pass_lengths=(9, 9, 9), gap_at=None)
    plain = prequential_evaluate(OnlineAdapter(spy_model(Recorder()), steps_per_pass=0), stream)
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=0, **learner)
    served = prequential_evaluate(adapter, stream)
    first = served.pass_number == 0
    # nothing is counted or remembered before the first pass ends, so its predictions are the model's own
    assert torch.allclose(served.scores[first], plain.scores[first].log_softmax(-1), atol=1e-5)
    assert not torch.allclose(served.scores[~first], plain.scores[~first].log_softmax(-1), atol=1e-3)
    # every complete window of the three passes was learned once (per future step, for the counts)
    windows = sum(u.windows_added for u in adapter.updates)
    if "site_prior" in learner:
        assert adapter.prior is not None and int(adapter.prior.counts.sum()) == windows * FUTURE
    if "site_memory" in learner:
        assert adapter.memory is not None and len(adapter.memory) == windows


def jump_stream() -> list[LabelledSample]:
    """Six passes of seven samples whose best beam goes 16, 18, 20, then jumps to 40, 42, 44, 46."""
    items: list[LabelledSample] = []
    index = 0
    for number in range(6):
        for beam in (16, 18, 20, 40, 42, 44, 46):
            power = np.exp(-0.5 * ((np.arange(1, 65) - beam) / 2.0) ** 2).astype(np.float32)
            gps = np.array([index, number], dtype=np.float32)
            items.append(LabelledSample(Sample(index, number, {"beam": power, "gps": gps}), beam))
            index += 1
    return items


@pytest.mark.parametrize("learner", [{"site_prior": 1.0}, {"site_memory": 0.9}], ids=["prior", "memory"])
def test_a_site_rule_the_model_never_saw_is_learned(learner: dict[str, float]) -> None:
    """At this site the best beam always jumps from 20 to 40: after a few passes the learner serves it."""
    items = jump_stream()
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=0, **learner)
    plain = OnlineAdapter(spy_model(Recorder()), steps_per_pass=0)  # the same model alone
    prequential_evaluate(adapter, items[:-7])  # five passes served and learned from
    last_pass = items[-7 : -7 + PAST]  # beams 16, 18, 20: the window predicted at beam 20
    served = [adapter.predict(item.sample) for item in last_pass][-1]
    alone = [plain.predict(item.sample) for item in last_pass][-1]
    assert served is not None and alone is not None
    assert int(alone.beams[0, 0]) != 40  # the untrained model does not know the jump
    assert int(served.beams[0, 0]) == 40 and int(served.beams[1, 0]) == 42
