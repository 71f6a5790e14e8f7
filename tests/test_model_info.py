"""``wmlm model-info``, the size presets, activation checkpointing and the efficiency benchmark script."""

from __future__ import annotations

import json

import pytest
import torch
from test_benchmarks import load_script
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

import wmlm.model.backbone as backbone_module
from wmlm.cli import main
from wmlm.model.backbone import PRESETS, CausalTransformer
from wmlm.model.wmlm import WMLM
from wmlm.model_info import backbone_flops_per_step


def model_info_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()  # drop anything printed before
    assert main(["model-info", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_wmlm_2_4b_has_2_4_billion_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    info = model_info_json(capsys, "--preset", "wmlm-2.4b")
    total = info["total"]["parameters"]
    assert abs(total - 2.4e9) <= 0.05 * 2.4e9, total
    assert sum(p["parameters"] for p in info["parts"]) == total
    assert {p["part"] for p in info["parts"]} >= {"encoder beam", "encoder gps", "fusion", "head beam"}
    assert (info["width"], info["depth"], info["attention_heads"]) == (2560, 30, 20)


def test_base_preset_is_gpt2_small_scale() -> None:
    base = PRESETS["base"]
    assert (base.width, base.depth, base.heads) == (768, 12, 12)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_counts_match_the_instantiated_model(capsys: pytest.CaptureFixture[str], preset: str) -> None:
    info = model_info_json(capsys, "--preset", preset, "--modalities", "beam,gps", "--heads", "beam")
    model = WMLM(modalities=["beam", "gps"], heads=["beam"], preset=preset)
    assert info["total"]["parameters"] == sum(p.numel() for p in model.parameters())
    parts = {p["part"]: p["parameters"] for p in info["parts"]}
    assert parts[f"backbone {preset}"] == sum(p.numel() for p in model.backbone.parameters())
    assert parts["encoder beam"] == sum(p.numel() for p in model.encoders["beam"].parameters())


def test_single_modality_and_other_past(capsys: pytest.CaptureFixture[str]) -> None:
    info = model_info_json(capsys, "--preset", "tiny", "--modalities", "beam", "--past", "8")
    assert info["modalities"] == ["beam"] and info["past"] == 8
    model = WMLM(modalities=["beam"], preset="tiny", past=8, align_epochs=0)
    assert info["total"]["parameters"] == sum(p.numel() for p in model.parameters())


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model-info", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "backbone tiny" in out and "total" in out and "FLOP" in out


def test_unknown_preset_exits_2_listing_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model-info", "--preset", "gigantic"]) == 2
    err = capsys.readouterr().err
    assert "gigantic" in err and all(name in err for name in PRESETS)


def test_unknown_modality_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model-info", "--preset", "tiny", "--modalities", "beam,sonar"]) == 2
    assert "sonar" in capsys.readouterr().err


@pytest.mark.parametrize("past", [1, 5])
def test_analytic_backbone_flops_match_torch_flop_counter(past: int) -> None:
    backbone = CausalTransformer(PRESETS["tiny"]).eval()
    # gradients on and the math attention backend: every matmul is a plain op the counter sees (the fused
    # inference and flash-attention kernels are invisible to it)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        backbone(torch.zeros(1, past, PRESETS["tiny"].width))
    assert counter.get_total_flops() == past * backbone_flops_per_step(PRESETS["tiny"], past)


def _loss_and_grads(checkpointing: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = WMLM(preset="tiny", embed_dim=16, align_epochs=0, activation_checkpointing=checkpointing)
    model.train()  # dropout on: checkpointing must replay the same masks
    generator = torch.Generator().manual_seed(1)
    batch = {
        "beam": torch.rand(4, 5, 64, generator=generator),
        "gps": 20 * torch.randn(4, 5, 2, generator=generator),
        "mask": {"beam": torch.ones(4, 5, dtype=torch.bool), "gps": torch.ones(4, 5, dtype=torch.bool)},
        "target": {"beam": torch.randint(0, 64, (4, 3), generator=generator)},
    }
    torch.manual_seed(2)
    outputs = model(batch)
    loss = model.heads["beam"].loss(outputs["beam"], batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def test_activation_checkpointing_keeps_loss_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - forwards to torch's checkpoint
        calls.append(1)
        return checkpoint(*args, **kwargs)

    loss, grads = _loss_and_grads(checkpointing=False)
    assert not calls
    monkeypatch.setattr(backbone_module, "checkpoint", counted)
    loss_ckpt, grads_ckpt = _loss_and_grads(checkpointing=True)
    assert len(calls) == PRESETS["tiny"].depth  # one checkpointed call per block
    torch.testing.assert_close(loss_ckpt, loss)
    assert grads.keys() == grads_ckpt.keys()
    assert any(name.startswith("backbone.blocks") for name in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, msg=name)


def test_efficiency_script_smoke(tmp_path) -> None:
    out = tmp_path / "efficiency.md"
    results = load_script("efficiency").main(
        [
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--preset",
            "tiny",
            "--repeats",
            "1",
            "--runs",
            "3",
            "--markdown",
            str(out),
        ]
    )
    training = results["training"]
    assert training["lightning_ms_per_step"] > 0 and training["plain_ms_per_step"] > 0
    assert training["ratio"] == pytest.approx(
        training["lightning_ms_per_step"] / training["plain_ms_per_step"]
    )  # one pair: its ratio is the median
    assert training["ratio_min"] == training["ratio"] == training["ratio_max"]
    assert set(results["latency_ms"]) == {"1", "256"}
    text = out.read_text()
    assert "python benchmarks/efficiency.py --steps 3" in text and "torch threads" in text
    assert "| Lightning / plain, median of 1 pairs (target <= 1.05) |" in text
