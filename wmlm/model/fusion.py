"""Token fusion (``WMLM(fusion="tokens")``): one backbone token per modality per step, plus a summary token.

The paper's "unified multimodal representation" (Table I, third paradigm). Instead of summing the
modalities' projections into one vector per step (``fusion="sum"``), every step ``t`` of a window becomes
``M + 1`` tokens: a learned **summary** token and one token per modality (its projected embedding). Each
token gets a learned type embedding (summary or which modality) and the position embedding of its step.
Attention is block-causal: a token sees every token of its own step and of earlier steps, nothing later;
a modality missing at a step (mask False, or absent from the batch) is never seen as a key. The heads read
the summary token of every step, ``[B, P, width]``, exactly as they read the steps of ``fusion="sum"``.

Why a summary token rather than the mean over the present modality tokens:

- it is always present, so no attention row is ever fully masked (all sensors missing at the first step
  would give a softmax over nothing, NaN) and there is nothing to divide by zero;
- its attention over the modality tokens is a learned, per-step weighting: the transformer decides which
  sensor to trust at each step instead of averaging a stale camera frame with a good beam sweep;
- it costs one token per step: ``P * (M + 1)`` tokens, ``(M + 1)²`` times the attention of ``fusion="sum"``.

Token order is step-major: ``[summary_0, m_1@0, ..., m_M@0, summary_1, m_1@1, ...]``; the modality slots
follow the model's modality order and are fixed, whichever modalities a batch holds, so the graph has one
shape for ONNX. Every mask is built from ``P``, ``M`` (fixed at export) and the ``[B, P]`` masks, so the
batch axis stays dynamic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

from wmlm.model.backbone import BackbonePreset, CausalTransformer

FUSIONS = ("sum", "tokens")


class FusedTokens(NamedTuple):
    """What ``WMLM.fuse`` hands ``TokenTransformer`` under ``fusion="tokens"``.

    Attributes:
        tokens: ``[B, P, M, width]`` projected embedding of each modality slot (zeros where missing).
        present: ``[B, P, M]`` bool, True where the modality holds a measurement at that step.
    """

    tokens: Tensor
    present: Tensor


def stack_tokens(
    projections: nn.ModuleDict, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]
) -> FusedTokens:
    """One token per modality slot of ``projections`` (its order) and step.

    Args:
        projections: ``{modality: nn.Linear(embed_dim, width)}``, the model's ``fusion``.
        embeddings: ``{modality: [B, P, embed_dim]}``; a modality not in it fills its slot as missing.
        masks: ``{modality: [B, P] bool}``; a modality without a mask is present at every step.
    """
    reference = next(iter(embeddings.values()))
    batch, steps = reference.shape[:2]
    tokens, present = [], []
    for name, projection in projections.items():
        if name not in embeddings:
            width = projection.out_features
            tokens.append(reference.new_zeros(batch, steps, width))
            present.append(torch.zeros(batch, steps, dtype=torch.bool, device=reference.device))
            continue
        token = projection(embeddings[name])
        mask = masks.get(name)
        if mask is None:
            mask = torch.ones(batch, steps, dtype=torch.bool, device=token.device)
        mask = mask.to(torch.bool)
        # `where`, not a product: a missing step's encoder output may be anything, NaN included
        tokens.append(torch.where(mask.unsqueeze(-1), token, torch.zeros_like(token)))
        present.append(mask)
    return FusedTokens(torch.stack(tokens, dim=2), torch.stack(present, dim=2))


def block_causal_allowed(steps: int, per_step: int, device: torch.device | None = None) -> Tensor:
    """``[L, L]`` bool with ``L = steps * per_step``: query ``i`` may attend key ``j`` iff ``j``'s step is not
    later than ``i``'s (full attention within a step, causal across steps)."""
    step_of = torch.arange(steps * per_step, device=device) // per_step
    return step_of.unsqueeze(0) <= step_of.unsqueeze(1)


class TokenTransformer(CausalTransformer):
    """``CausalTransformer`` over ``M + 1`` tokens per step: ``FusedTokens -> [B, P, width]``.

    The same blocks, positions (one per **step**: ``max_steps`` still counts steps, not tokens) and
    activation checkpointing as ``CausalTransformer``, plus ``token_type`` ``[M + 1, width]`` (row 0: the
    summary token, row ``1 + i``: modality slot ``i``). Output: the final hidden state of each step's
    summary token.

    Args:
        preset, dropout, activation_checkpointing: as ``CausalTransformer``.
        num_modalities: modality slots per step, ``M``.
    """

    def __init__(
        self,
        preset: BackbonePreset,
        num_modalities: int,
        dropout: float = 0.1,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__(preset, dropout=dropout, activation_checkpointing=activation_checkpointing)
        self.num_modalities = num_modalities
        self.token_type = nn.Parameter(torch.zeros(num_modalities + 1, preset.width))
        nn.init.normal_(self.token_type, std=0.02)

    def forward(self, fused: FusedTokens) -> Tensor:  # type: ignore[override]
        tokens, present = fused
        batch, steps, slots, width = tokens.shape
        if slots != self.num_modalities:
            raise ValueError(f"backbone: {slots} modality tokens per step, built for {self.num_modalities}")
        self.check_steps(steps)
        per_step = slots + 1
        summary = tokens.new_zeros(batch, steps, 1, width)
        hidden = torch.cat([summary, tokens], dim=2) + self.token_type + self.position[:steps].unsqueeze(1)
        hidden = hidden.reshape(batch, steps * per_step, width)
        keys = torch.cat([torch.ones_like(present[:, :, :1]), present], dim=2).reshape(batch, 1, -1)
        allowed = block_causal_allowed(steps, per_step, tokens.device).unsqueeze(0) & keys  # [B, L, L]
        mask = torch.zeros(allowed.shape, dtype=tokens.dtype, device=tokens.device)
        mask = mask.masked_fill(~allowed, float("-inf"))
        # nn.MultiheadAttention takes a per-sample mask as [B * heads, L, L], batch-major
        length = steps * per_step
        heads = self.preset.heads
        mask = mask.unsqueeze(1).expand(batch, heads, length, length).reshape(batch * heads, length, length)
        hidden = self.run_blocks(hidden, mask, is_causal=False)
        return hidden.reshape(batch, steps, per_step, width)[:, :, 0]
