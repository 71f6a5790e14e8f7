"""The per-site beam prior of online serving: the blend on known cases, learning only from ended passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_online import FUTURE, PAST, Recorder, labelled_stream, spy_model

from wmlm.deploy.online import OnlineAdapter, Sample
from wmlm.deploy.prequential import LabelledSample, prequential_evaluate
from wmlm.deploy.site_prior import SiteBeamPrior
from wmlm.errors import ConfigError
from wmlm.heads.beam import BeamHead
from wmlm.model.wmlm import WMLM


def test_posterior_is_the_model_without_counts_and_moves_to_the_counts() -> None:
    prior = SiteBeamPrior(future=2, weight=4.0)
    model = torch.full((2, 64), 1 / 64)
    assert torch.equal(prior.posterior(10, model), model)
    for _ in range(12):
        prior.add(10, torch.tensor([12, 30]))
    blended = prior.posterior(10, model)
    # 12 counts on beam 12 against 4 pseudo-counts spread evenly: (12 + 4/64) / 16
    assert blended[0, 12] == pytest.approx((12 + 4 / 64) / 16)
    assert blended[0, 30] == pytest.approx((4 / 64) / 16)
    assert blended[1, 30] == pytest.approx((12 + 4 / 64) / 16)
    assert torch.allclose(blended.sum(-1), torch.ones(2))
    assert torch.equal(prior.posterior(11, model), model)  # counts are per current beam


def test_bad_prior_settings_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="weight must be a positive"):
        SiteBeamPrior(future=3, weight=0)
    with pytest.raises(ValueError, match="expected 3 future beams"):
        SiteBeamPrior(future=3).add(5, torch.tensor([1, 2]))
    no_power = WMLM(
        modalities=("gps",),
        anchor="gps",
        align_epochs=0,
        heads=[BeamHead()],
        preset="tiny",
        embed_dim=16,
        past=PAST,
        future=FUTURE,
    )
    with pytest.raises(ConfigError, match="site_prior needs a beam-power modality"):
        OnlineAdapter(no_power, site_prior=50.0)


def test_the_prior_learns_from_ended_passes_only() -> None:
    stream = labelled_stream(pass_lengths=(9, 9, 9), gap_at=None)
    plain = prequential_evaluate(OnlineAdapter(spy_model(Recorder()), steps_per_pass=0), stream)
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=0, site_prior=5.0)
    blended = prequential_evaluate(adapter, stream)
    first = blended.pass_number == 0
    # nothing is counted before the first pass ends, so its predictions are the model's own
    assert torch.allclose(blended.scores[first], plain.scores[first].log_softmax(-1), atol=1e-5)
    assert not torch.allclose(blended.scores[~first], plain.scores[~first].log_softmax(-1), atol=1e-3)
    # every complete window of the three passes was counted once per future step
    assert adapter.prior is not None
    assert int(adapter.prior.counts.sum()) == sum(u.windows_added for u in adapter.updates) * FUTURE


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


def test_a_site_rule_the_model_never_saw_is_learned() -> None:
    """At this site the best beam always jumps from 20 to 40: after a few passes the prior serves it."""
    items = jump_stream()
    adapter = OnlineAdapter(spy_model(Recorder()), steps_per_pass=0, site_prior=1.0)
    plain = OnlineAdapter(spy_model(Recorder()), steps_per_pass=0)  # the same model, no prior
    prequential_evaluate(adapter, items[:-7])  # five passes served and learned from
    last_pass = items[-7 : -7 + PAST]  # beams 16, 18, 20: the window predicted at beam 20
    served = [adapter.predict(item.sample) for item in last_pass][-1]
    alone = [plain.predict(item.sample) for item in last_pass][-1]
    assert served is not None and alone is not None
    assert int(alone.beams[0, 0]) != 40  # the untrained model does not know the jump
    assert int(served.beams[0, 0]) == 40 and int(served.beams[1, 0]) == 42
