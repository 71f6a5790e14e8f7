"""GPT-style causal transformer over per-step fused embeddings, with named size presets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class BackbonePreset:
    """Architecture as data: width, depth and heads of the causal transformer."""

    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0
    max_steps: int = 64


PRESETS: dict[str, BackbonePreset] = {
    "tiny": BackbonePreset(width=32, depth=2, heads=2),
    "small": BackbonePreset(width=128, depth=4, heads=4),
    "base": BackbonePreset(width=768, depth=12, heads=12),
}


def get_preset(name: str) -> BackbonePreset:
    if name not in PRESETS:
        raise KeyError(f"unknown backbone preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name]


class CausalTransformer(nn.Module):
    """Pre-norm transformer with causal self-attention: ``[B, P, width] -> [B, P, width]``.

    Step ``t`` attends to steps ``<= t`` only, so the hidden state of the last step summarises the
    window and every earlier state is a valid prediction point (GPT-style).
    """

    def __init__(self, preset: BackbonePreset, dropout: float = 0.1) -> None:
        super().__init__()
        self.preset = preset
        self.position = nn.Parameter(torch.zeros(preset.max_steps, preset.width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=preset.width,
            nhead=preset.heads,
            dim_feedforward=int(preset.width * preset.mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, num_layers=preset.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(preset.width)

    def forward(self, x: Tensor) -> Tensor:
        steps = x.shape[1]
        if steps > self.preset.max_steps:
            raise ValueError(f"backbone: {steps} steps exceed the preset's max_steps={self.preset.max_steps}")
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device, dtype=x.dtype)
        hidden = self.blocks(x + self.position[:steps], mask=mask, is_causal=True)
        return self.norm(hidden)
