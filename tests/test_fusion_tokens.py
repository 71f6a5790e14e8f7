"""``WMLM(fusion="tokens")``: block-causal attention over one token per modality per step.

Checked by perturbing inputs of a tiny model in eval mode (dropout 0): a step's hidden state depends on
every modality of its own and earlier steps and on nothing later; a missing modality (mask False, or
absent from the batch) changes nothing, even when its input is NaN. Then end to end through the CLI and
through ONNX export (ONNX Runtime within ``ATOL`` / ``RTOL`` of PyTorch). ``fusion="sum"`` keeps its
structure (``tests/test_model_structure.py`` freezes it; here only what tokens add is checked).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_cli_e2e import fit_args

from wmlm import WMLM
from wmlm.cli import main
from wmlm.errors import ConfigError
from wmlm.model.backbone import BackbonePreset, CausalTransformer
from wmlm.model.fusion import FusedTokens, TokenTransformer, block_causal_allowed

TINY: dict[str, Any] = {"preset": "tiny", "embed_dim": 16, "dropout": 0.0}
PAST = 5


def tokens_model(**options: Any) -> WMLM:
    torch.manual_seed(0)
    return WMLM(fusion="tokens", **(TINY | options)).eval()


def make_batch(size: int = 3, seed: int = 0) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "beam": torch.rand(size, PAST, 64, generator=generator) + 1e-3,
        "gps": torch.randn(size, PAST, 2, generator=generator) * 10,
        "mask": {m: torch.ones(size, PAST, dtype=torch.bool) for m in ("beam", "gps")},
    }


def hidden(model: WMLM, batch: dict[str, Any]) -> torch.Tensor:
    """``[B, P, width]``: what the heads read."""
    with torch.no_grad():
        return model.backbone(model.fuse(model.embed(batch), batch["mask"]))


def test_block_causal_pattern() -> None:
    allowed = block_causal_allowed(steps=3, per_step=2)
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(allowed, expected)


def test_a_step_sees_its_own_and_earlier_steps_only() -> None:
    model = tokens_model()
    batch = make_batch()
    base = hidden(model, batch)
    assert base.shape == (3, PAST, 32)
    later = make_batch()
    later["beam"][:, 3] += 0.5  # a later step of one modality
    changed = hidden(model, later)
    assert torch.equal(changed[:, :3], base[:, :3])
    assert not torch.allclose(changed[:, 3:], base[:, 3:])
    other = make_batch()
    other["gps"][:, 2] += 5.0  # the other modality at step 2: seen by step 2's summary, in its own step
    changed = hidden(model, other)
    assert torch.equal(changed[:, :2], base[:, :2])
    assert (changed[:, 2] - base[:, 2]).abs().max() > 1e-4


def test_a_missing_modality_changes_nothing() -> None:
    model = tokens_model()
    batch = make_batch()
    batch["mask"]["gps"][0, 2] = False
    base = hidden(model, batch)
    perturbed = make_batch()
    perturbed["mask"] = batch["mask"]
    perturbed["gps"][0, 2] = float("nan")  # whatever a missing step holds never reaches the heads
    changed = hidden(model, perturbed)
    assert torch.isfinite(changed).all()
    assert torch.allclose(changed, base, atol=1e-6, rtol=0)
    # a modality left out of the batch is missing at every step, as with an all-False mask
    without = {"beam": batch["beam"], "mask": {"beam": batch["mask"]["beam"]}}
    all_false = make_batch()
    all_false["mask"]["gps"][:] = False
    assert torch.allclose(hidden(model, without), hidden(model, all_false), atol=1e-6, rtol=0)


def test_every_modality_missing_at_a_step_stays_finite() -> None:
    model = tokens_model()
    batch = make_batch()
    for m in ("beam", "gps"):
        batch["mask"][m][:, 0] = False  # nothing at the first step: only its summary token remains
    with torch.no_grad():
        outputs = model(batch)
    assert all(torch.isfinite(v).all() for v in outputs.values())


def test_positions_count_steps_not_tokens() -> None:
    preset = BackbonePreset(width=16, depth=1, heads=2, max_steps=4)
    backbone = TokenTransformer(preset, num_modalities=2, dropout=0.0).eval()
    tokens = FusedTokens(torch.randn(2, 4, 2, 16), torch.ones(2, 4, 2, dtype=torch.bool))
    assert backbone(tokens).shape == (2, 4, 16)  # 12 tokens, 4 steps: within max_steps
    too_long = FusedTokens(torch.randn(2, 5, 2, 16), torch.ones(2, 5, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="5 steps exceed the preset's max_steps=4"):
        backbone(too_long)


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    grads = []
    for recompute in (False, True):
        model = tokens_model(activation_checkpointing=recompute).train()
        batch = make_batch()
        batch["mask"]["gps"][1, 1:3] = False
        out = model.backbone(model.fuse(model.embed(batch), batch["mask"]))
        out.square().mean().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and "backbone.token_type" in grads[0]
    for key, value in grads[0].items():
        assert torch.allclose(value, grads[1][key], atol=1e-6), key


def test_sum_is_unchanged_and_tokens_add_one_parameter() -> None:
    torch.manual_seed(0)
    plain = WMLM(**TINY)
    tokens = tokens_model()
    assert plain.fusion_mode == "sum" and type(plain.backbone) is CausalTransformer
    assert isinstance(plain.fuse(plain.embed(make_batch()), make_batch()["mask"]), torch.Tensor)
    assert plain.hparams["fusion"] == "sum" and tokens.hparams["fusion"] == "tokens"
    extra = [k for k in tokens.state_dict() if k not in plain.state_dict()]
    assert extra == ["backbone.token_type"]
    assert tokens.state_dict()["backbone.token_type"].shape == (3, 32)  # summary + beam + gps
    # same keys in the same order otherwise, so a sum checkpoint's weights initialise a tokens model
    assert [k for k in tokens.state_dict() if k != "backbone.token_type"] == list(plain.state_dict())


def test_unknown_fusion_is_refused() -> None:
    with pytest.raises(ConfigError, match="model.fusion must be one of sum, tokens, got 'concat'"):
        WMLM(fusion="concat", **TINY)  # type: ignore[arg-type]


def test_fit_with_tokens_through_the_cli(data_root: Path, tmp_path: Path) -> None:
    from wmlm.deploy.export import load_model

    args = fit_args(data_root, tmp_path / "runs", "--model.init_args.fusion", "tokens")
    assert main([*args, "--test_after_fit", "false"]) == 0
    model = load_model(next((tmp_path / "runs").rglob("last.ckpt")))
    assert model.hparams["fusion"] == "tokens" and isinstance(model.backbone, TokenTransformer)


@pytest.mark.skipif(not importlib.util.find_spec("onnxruntime"), reason="needs onnxruntime")
@pytest.mark.parametrize(
    ("modalities", "exporter"), [(None, "auto"), (["beam"], "auto"), (None, "torchscript")]
)
def test_onnx_export_matches_pytorch(tmp_path: Path, modalities: list[str] | None, exporter: str) -> None:
    from wmlm.deploy.export import ATOL, RTOL, export_model
    from wmlm.deploy.predictor import Predictor

    model = tokens_model()
    info = export_model(model, tmp_path / "exported", modalities, exporter=exporter)  # checked at batch 2
    dynamo = exporter == "auto" and importlib.util.find_spec("onnxscript") is not None
    assert info["exporter"] == ("dynamo" if dynamo else "torchscript")  # no silent fallback
    assert max(info["verification"]["max_abs_difference"].values()) < ATOL
    chosen = modalities or ["beam", "gps"]
    batch = make_batch(size=5, seed=1)  # another batch size than the traced one, with missing steps
    batch["mask"]["beam"][0, 1] = False
    batch["mask"]["beam"][2, 0] = False
    batch["mask"]["gps"][:, :3] = False
    torch_batch = {m: batch[m] for m in chosen} | {"mask": {m: batch["mask"][m] for m in chosen}}
    with torch.no_grad():
        expected = {h: v.numpy() for h, v in model(torch_batch).items()}
    predictor = Predictor(tmp_path / "exported", intra_op_threads=1)
    got = predictor.predict(
        {m: batch[m].numpy() for m in chosen}, {m: batch["mask"][m].numpy() for m in chosen}
    )
    for head, value in expected.items():
        np.testing.assert_allclose(got[head], value, atol=ATOL, rtol=RTOL, err_msg=head)
