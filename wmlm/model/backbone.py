"""GPT-style causal transformer over per-step fused embeddings, with named size presets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class BackbonePreset:
    """Architecture as data: width, depth and heads of the causal transformer.

    Attributes:
        width: hidden size ``D`` of every step.
        depth: number of transformer blocks.
        heads: attention heads per block (``width`` must be divisible by it).
        mlp_ratio: MLP hidden size as a multiple of ``width``.
        max_steps: longest window (learned positional embeddings).
    """

    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0
    max_steps: int = 64


# A block holds 12·width² + 13·width parameters (attention 4·w² + 4·w, MLP 8·w² + 5·w, two norms 4·w).
# `wmlm model-info --preset NAME` prints the whole model's count and FLOPs.
PRESETS: dict[str, BackbonePreset] = {
    "tiny": BackbonePreset(width=32, depth=2, heads=2),  # tests: seconds on a CPU
    "small": BackbonePreset(width=128, depth=4, heads=4),  # default: 0.8 M backbone parameters
    # between small and base, for scaling curves a CPU can still train: 9.8 M backbone parameters
    "medium": BackbonePreset(width=320, depth=8, heads=8),
    "base": BackbonePreset(width=768, depth=12, heads=12),  # GPT-2 small scale: 85 M backbone parameters
    # 2.36 B parameters with the default beam + gps encoders and beam head (2.4 B - 1.6 %)
    "wmlm-2.4b": BackbonePreset(width=2560, depth=30, heads=20),
}


def get_preset(name: str) -> BackbonePreset:
    """The preset called ``name``; ``KeyError`` listing the available ones otherwise."""
    if name not in PRESETS:
        raise KeyError(f"unknown backbone preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name]


class CausalTransformer(nn.Module):
    """Pre-norm transformer with causal self-attention: ``[B, P, width] -> [B, P, width]``.

    Step ``t`` attends to steps ``<= t`` only, so the hidden state of the last step summarises the
    window and every earlier state is a valid prediction point (GPT-style).

    Args:
        preset: width, depth and heads.
        dropout: dropout inside every block.
        activation_checkpointing: while training with gradients, keep only each block's input and
            recompute the block's activations during the backward pass (``torch.utils.checkpoint``): a
            block's activation memory is traded for a second forward pass. Results are unchanged (dropout
            masks are replayed).
    """

    def __init__(
        self, preset: BackbonePreset, dropout: float = 0.1, activation_checkpointing: bool = False
    ) -> None:
        super().__init__()
        self.preset = preset
        self.activation_checkpointing = activation_checkpointing
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
        self.check_steps(steps)
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device, dtype=x.dtype)
        return self.run_blocks(x + self.position[:steps], mask, is_causal=True)

    def check_steps(self, steps: int) -> None:
        """``ValueError`` when a window of ``steps`` steps is longer than the learned positions."""
        if steps > self.preset.max_steps:
            raise ValueError(f"backbone: {steps} steps exceed the preset's max_steps={self.preset.max_steps}")

    def run_blocks(self, hidden: Tensor, mask: Tensor, is_causal: bool) -> Tensor:
        """Every block, then the final norm: ``[B, L, width] -> [B, L, width]``.

        ``mask``: additive attention mask, ``[L, L]`` or ``[B * heads, L, L]`` (0 attend, ``-inf`` not);
        ``is_causal``: a hint that ``mask`` is the plain causal one.
        """
        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        # the blocks one by one, as nn.TransformerEncoder.forward runs them, so each can be checkpointed
        for block in self.blocks.layers:
            if recompute:
                hidden = checkpoint(block, hidden, mask, None, is_causal, use_reentrant=False)
            else:
                hidden = block(hidden, src_mask=mask, is_causal=is_causal)
        return self.norm(hidden)
