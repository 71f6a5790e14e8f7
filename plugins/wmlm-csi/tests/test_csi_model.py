"""The ``csi`` modality's encoder, the ``csi`` head and its NMSE metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from csi_fixtures import csi_plugin, private_cache  # noqa: F401  # autouse fixtures
from wmlm import registry

from wmlm_csi import (
    ChannelNMSEdB,
    CsiHead,
    CsiModality,
    CsiPatchEncoder,
    channel_metrics,
    csi_power,
    normalize_csi,
)


def _csi(*leading: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*leading, 2, 16, 32, generator=torch.Generator().manual_seed(seed))


def test_registered_by_name() -> None:
    assert registry.get_modality("csi") is CsiModality
    assert registry.get_head("csi") is CsiHead
    record = next(r for r in registry.load_plugins().records if r.registered["head"] == ["csi"])
    assert record.status == "ok"
    assert record.registered == {"modality": ["csi"], "head": ["csi"], "reader": ["csi"]}


def test_normalize_csi_sets_mean_power_to_one() -> None:
    csi = 1e-3 * _csi(3, 4)
    power = csi_power(csi)
    expected = (csi[..., 0, :, :] ** 2 + csi[..., 1, :, :] ** 2).mean(dim=(-2, -1))
    torch.testing.assert_close(power, expected)
    torch.testing.assert_close(csi_power(normalize_csi(csi)), torch.ones(3, 4))
    assert torch.isfinite(normalize_csi(torch.zeros(1, 2, 16, 32))).all()


def test_encoder_shapes_and_site_level_invariance() -> None:
    torch.manual_seed(0)
    modality = CsiModality()
    encoder = modality.build_encoder(24).eval()
    csi = _csi(2, 5)
    modality.validate(csi)
    out = encoder(csi)
    assert out.shape == (2, 5, 24) and torch.isfinite(out).all()
    # every step is normalised by its own power: a site 40 dB stronger looks the same
    scales = torch.logspace(-3, 2, 10).reshape(2, 5, 1, 1, 1)
    torch.testing.assert_close(encoder(csi * scales), out, rtol=1e-4, atol=1e-5)
    # a step's embedding depends on that step's channel only
    changed = csi.clone()
    changed[1, 2] = _csi(seed=9)
    same = (encoder(changed) == out).all(dim=-1)
    assert same[0].all() and same[1, [0, 1, 3, 4]].all() and not same[1, 2]
    with pytest.raises(ValueError, match=r"csi.*\[B, P, 2, 16, 32\]"):
        modality.validate(csi[..., :16])
    with pytest.raises(ValueError, match="multiples of patch_size"):
        CsiModality(patch_size=(5, 8))
    with pytest.raises(ValueError, match="multiple of heads"):
        CsiModality(width=30, heads=4)
    small = CsiPatchEncoder(8, antennas=8, subcarriers=4, patch_size=(2, 2), width=16, layers=1, heads=2)
    assert small(torch.randn(3, 2, 2, 8, 4)).shape == (3, 2, 8)


def _batch(batch: int = 4, past: int = 5, future: int = 3, level: float = 1.0) -> dict:
    csi = level * _csi(batch, past + future, seed=1)
    return {"csi": csi[:, :past], "target": {"csi": csi[:, past:]}}


def test_head_forecasts_relative_to_the_last_step() -> None:
    torch.manual_seed(0)
    head = CsiHead()
    head.build(hidden_dim=32, past_steps=5, future_steps=3)
    hidden = torch.randn(4, 5, 32)
    batch = _batch()
    out = head(hidden, batch)
    assert out.shape == (4, 3, 2, 16, 32)
    # untrained, it predicts zeros: 0 dB NMSE, not noise
    metric = ChannelNMSEdB()
    metric.update(*head.metric_inputs(out, batch))
    assert float(metric.compute()) == pytest.approx(0.0)
    # the target is divided by the RMS amplitude of the last past step
    scale = csi_power(batch["csi"][:, -1]).sqrt()[:, None, None, None, None]
    torch.testing.assert_close(head.target_normalized(batch), batch["target"]["csi"] / scale)
    # so the loss does not depend on the site's absolute level
    loud = _batch(level=1e3)
    torch.testing.assert_close(head.loss(out, loud), head.loss(out, batch))
    assert head.metric_inputs(out, batch)[0].shape == out.shape
    columns = head.predictions(out)
    assert list(columns) == ["power change (dB)"] and columns["power change (dB)"].shape == (4, 3)
    with pytest.raises(KeyError, match="reference='csi' is not in this batch"):
        head.loss(out, {"target": batch["target"]})
    with pytest.raises(ValueError, match=r"target 'csi' should be \[B, T, 2, 16, 32\]"):
        head.loss(out, {"csi": batch["csi"], "target": {"csi": batch["target"]["csi"][..., :8]}})


def test_residual_head_starts_from_persistence() -> None:
    head = CsiHead(residual=True)
    head.build(hidden_dim=32, past_steps=5, future_steps=3)
    batch = _batch()
    out = head(torch.randn(4, 5, 32), batch)
    last = batch["csi"][:, -1:] / csi_power(batch["csi"][:, -1]).sqrt()[:, None, None, None, None]
    torch.testing.assert_close(out, last.expand_as(out))


def _nmse_db(preds: np.ndarray, target: np.ndarray) -> float:
    """By hand: mean over samples of ||error||^2 / ||truth||^2, in dB."""
    ratios = [np.sum((p - t) ** 2) / np.sum(t**2) for p, t in zip(preds, target)]
    return 10 * np.log10(np.mean(ratios))


def test_nmse_metric_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(6, 3, 2, 4, 8)) * rng.uniform(0.1, 10, size=(6, 3, 1, 1, 1))
    preds = target + rng.normal(scale=0.3, size=target.shape)
    metrics = channel_metrics(3)
    # two updates, as over two batches
    for part in (slice(0, 4), slice(4, 6)):
        metrics.update(
            torch.tensor(preds[part], dtype=torch.float32), torch.tensor(target[part], dtype=torch.float32)
        )
    values = metrics.compute()
    assert set(values) == {"nmse_db", "nmse_db_t1", "nmse_db_t2", "nmse_db_t3"}
    overall = _nmse_db(preds.reshape(18, -1), target.reshape(18, -1))
    assert float(values["nmse_db"]) == pytest.approx(overall, abs=1e-4)
    for step in range(3):
        expected = _nmse_db(preds[:, step].reshape(6, -1), target[:, step].reshape(6, -1))
        assert float(values[f"nmse_db_t{step + 1}"]) == pytest.approx(expected, abs=1e-4)
    # predicting zeros is 0 dB; the same scale on both sides changes nothing
    zeros = ChannelNMSEdB()
    zeros.update(torch.zeros(2, 3, 5), torch.ones(2, 3, 5))
    assert float(zeros.compute()) == pytest.approx(0.0)
    scaled = ChannelNMSEdB(step=1)
    scaled.update(
        torch.tensor(preds * 1e4, dtype=torch.float32), torch.tensor(target * 1e4, dtype=torch.float32)
    )
    assert float(scaled.compute()) == pytest.approx(float(values["nmse_db_t2"]), abs=1e-4)
    with pytest.raises(ValueError, match=r"both \[B, F, ...\]"):
        ChannelNMSEdB().update(torch.zeros(2, 3), torch.zeros(2, 3))
