"""``model.backbone {kind: llm, path: DIR}``: a tiny randomly initialised GPT-2 saved in a temp folder, never the
network; only projections, norms, positions and LoRA train; CLI fit, checkpoint round trip, ONNX export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_cli_e2e import fit_args

from wmlm import WMLM
from wmlm.cli import main
from wmlm.errors import ConfigError
from wmlm.model.llm_backbone import LLMBackbone, parse_backbone

transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

TRAINABLE_LEAVES = ("ln_1", "ln_2", "ln_f", "wpe", "lora_A", "lora_B", "input_proj", "output_proj")


@pytest.fixture(autouse=True)
def _offline(no_network: None) -> None:
    """Every test here fails if anything tries to open a connection (conftest's ``no_network``)."""


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer GPT-2 (width 32, 16 positions) written by ``save_pretrained``."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=16, vocab_size=64)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Qwen2 (RMSNorm, rotary positions, grouped-query attention)."""
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=64, max_position_embeddings=64,
    )  # fmt: skip
    transformers.Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def spec(path: Path, **extra: Any) -> dict[str, Any]:
    return {"kind": "llm", "path": str(path), **extra}


def tiny_model(path: Path, **extra: Any) -> WMLM:
    return WMLM(preset="tiny", embed_dim=16, backbone=spec(path, **extra))


def trainable(module: torch.nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("rank", [0, 4])
def test_only_norms_positions_lora_and_projections_train(tiny_gpt2: Path, rank: int) -> None:
    model = tiny_model(tiny_gpt2, lora_rank=rank)
    backbone = model.backbone
    assert isinstance(backbone, LLMBackbone)
    names = trainable(backbone)
    assert names and all(any(leaf in n for leaf in TRAINABLE_LEAVES) for n in names)
    assert any("wpe" in n for n in names) and any("ln_f" in n for n in names)
    assert any("lora_" in n for n in names) == (rank > 0)
    frozen = [n for n, p in backbone.named_parameters() if not p.requires_grad]
    assert {"lm.wte.weight", "lm.h.0.attn.c_proj.weight", "lm.h.1.mlp.c_fc.weight"} <= set(frozen)
    attention = "lm.h.0.attn.c_attn.base_layer.weight" if rank else "lm.h.0.attn.c_attn.weight"
    assert attention in frozen
    # WMLM toggles the whole backbone at every epoch (freeze_backbone, stages): frozen parts stay frozen
    backbone.requires_grad_(False)
    assert trainable(backbone) == []
    backbone.requires_grad_(True)
    assert trainable(backbone) == names
    # the rest of the model (encoders, fusion, heads) trains as with the preset's transformer
    outside = [n for n in trainable(model) if not n.startswith("backbone.")]
    assert outside == [n for n, _ in model.named_parameters() if not n.startswith("backbone.")]


@pytest.mark.parametrize("lm", ["tiny_gpt2", "tiny_qwen2"])
def test_forward_shapes_and_causality(lm: str, request: pytest.FixtureRequest) -> None:
    backbone = tiny_model(request.getfixturevalue(lm), lora_rank=2).backbone.eval()
    x = torch.randn(3, 5, 32)  # [B, P, width of the tiny preset]
    later = x.clone()
    later[:, -1] += 1.0
    with torch.no_grad():
        y, y_later = backbone(x), backbone(later)
    assert y.shape == (3, 5, 32)
    assert torch.allclose(y[:, :-1], y_later[:, :-1], atol=1e-6)  # step t sees steps <= t only
    assert not torch.allclose(y[:, -1], y_later[:, -1])


def test_qwen2_trains_its_rms_norms_and_lora_only(tiny_qwen2: Path) -> None:
    names = trainable(tiny_model(tiny_qwen2, lora_rank=2).backbone)
    lm = sorted({n.split(".")[-2 if "lora_" not in n else -4] for n in names if n.startswith("lm.")})
    assert lm == ["input_layernorm", "norm", "post_attention_layernorm", "q_proj", "v_proj"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "llm", "path": "gpt2"}, "model.backbone.path: 'gpt2' is not a local Hugging Face model"),
        ({"kind": "llm"}, "model.backbone.path: the local folder"),
        ({"kind": "gru", "path": "."}, "model.backbone.kind must be one of llm"),
        ({"kind": "llm", "path": ".", "rank": 4}, "unknown keys ['rank']"),
        ("gpt2", "model.backbone must be null or a mapping"),
    ],
)
def test_bad_options_name_the_key(options: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_backbone(options)
    assert message in str(error.value)


def test_bad_options_with_a_real_folder(tiny_gpt2: Path) -> None:
    with pytest.raises(ConfigError, match=r"model.backbone.lora_rank must be an integer >= 0"):
        parse_backbone(spec(tiny_gpt2, lora_rank=-1))
    with pytest.raises(ConfigError, match=r"model.fusion='tokens' is not supported with model.backbone"):
        WMLM(preset="tiny", embed_dim=16, fusion="tokens", backbone=spec(tiny_gpt2))
    with pytest.raises(ConfigError, match=r"model.past=20 exceeds the language model's max_position"):
        WMLM(preset="tiny", embed_dim=16, past=20, backbone=spec(tiny_gpt2))
    with pytest.raises(ConfigError, match=r"model.backbone.lora_targets"):
        tiny_model(tiny_gpt2, lora_rank=2, lora_targets=["no_such_module"])


def test_missing_folder_is_one_message_and_exit_code_2(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "models" / "gpt2"
    code = main(
        fit_args(data_root, tmp_path / "runs", "--model.init_args.backbone", json.dumps(spec(missing)))
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"model.backbone.path: {str(missing)!r} is not a local Hugging Face model folder" in err
    assert "huggingface-cli download" in err and "Traceback" not in err


def test_fit_through_the_cli_then_checkpoint_and_onnx(
    data_root: Path, tmp_path: Path, tiny_gpt2: Path, capsys: pytest.CaptureFixture
) -> None:
    from wmlm.deploy.export import ExportError, export_model, load_model

    option = json.dumps(spec(tiny_gpt2, lora_rank=4))
    args = fit_args(data_root, tmp_path / "runs", "--model.init_args.backbone", option)
    assert main([*args, "--test_after_fit", "false"]) == 0
    checkpoint = next((tmp_path / "runs").rglob("last.ckpt"))

    # round trip: the checkpoint rebuilds the model from the same folder, weights equal to the file's
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for model in (
        WMLM.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True),
        load_model(checkpoint),
    ):
        state = model.state_dict()
        assert list(state) == list(saved)
        assert all(state[k].equal(saved[k]) for k in saved)
    # training moved the trainable parts and left the language model's frozen weights as in the folder
    original = transformers.AutoModel.from_pretrained(tiny_gpt2, local_files_only=True).state_dict()
    assert saved["backbone.lm.h.0.attn.c_attn.base_layer.weight"].equal(original["h.0.attn.c_attn.weight"])
    assert saved["backbone.lm.h.1.mlp.c_fc.weight"].equal(original["h.1.mlp.c_fc.weight"])
    assert not saved["backbone.lm.h.0.attn.c_attn.lora_B.default.weight"].eq(0).all()
    assert not saved["backbone.lm.ln_f.weight"].equal(original["ln_f.weight"])

    model = load_model(checkpoint)
    info = export_model(model, tmp_path / "onnx", exporter="auto")
    assert info["exporter"] == "dynamo"
    with pytest.raises(ExportError, match=r"exports only with the dynamo exporter"):
        export_model(model, tmp_path / "ts", exporter="torchscript")


def test_gradients_reach_only_the_trainable_set_with_checkpointing(tiny_gpt2: Path) -> None:
    model = WMLM(
        preset="tiny", embed_dim=16, activation_checkpointing=True, backbone=spec(tiny_gpt2, lora_rank=2)
    )
    backbone = model.backbone.train()
    assert backbone.activation_checkpointing
    backbone(torch.randn(2, 5, 32)).square().mean().backward()
    with_grad = [n for n, p in backbone.named_parameters() if p.grad is not None]
    assert with_grad == list(backbone.trainable_names)
