"""The per-site beam prior of online serving: the blend on known cases and bad settings (what it shares with
the site memory is in test_site_learners.py)."""

from __future__ import annotations

import pytest
import torch
from test_online import FUTURE, PAST

from wmlm.deploy.online import OnlineAdapter
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
