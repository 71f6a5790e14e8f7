"""Stage-1 anchor alignment: symmetric InfoNCE between each modality and the anchor(s)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from torch import Tensor, nn


def alignment_pairs(modalities: Sequence[str], anchors: Sequence[str]) -> list[tuple[str, str]]:
    """``(anchor, other)`` pairs to align: every anchor with every other modality (joint anchors too)."""
    pairs = [(a, m) for a in anchors for m in modalities if m != a]
    # with several anchors, align each unordered pair once
    seen: set[frozenset[str]] = set()
    unique = []
    for a, m in pairs:
        if frozenset((a, m)) not in seen:
            seen.add(frozenset((a, m)))
            unique.append((a, m))
    return unique


class AnchorAlignment(nn.Module):
    """Mean CLIP loss over the anchor pairs, one learnable temperature per pair.

    Each time step of each window is one sample: embeddings ``[B, P, D]`` are flattened to ``[B*P, D]``
    and L2-normalised, and the matching step of the anchor is the positive. open_clip's ``ClipLoss``
    gathers embeddings across ranks under DDP (``gather_with_grad``), so negatives span the global batch.

    Args:
        pairs: ``(anchor, other)`` modality pairs.
        init_temperature: CLIP's initial temperature (logit scale ``1 / T``).
        max_logit_scale: the learnable scale is clamped to this (100 in CLIP).
    """

    def __init__(
        self, pairs: Sequence[tuple[str, str]], init_temperature: float = 0.07, max_logit_scale: float = 100.0
    ) -> None:
        super().__init__()
        self.pairs = list(pairs)
        self.max_logit_scale = max_logit_scale
        self.log_scales = nn.ParameterDict(
            {
                self.key(a, m): nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
                for a, m in self.pairs
            }
        )
        self.clip_loss = ClipLoss(gather_with_grad=True, cache_labels=True)

    @staticmethod
    def key(anchor: str, other: str) -> str:
        return f"{anchor}__{other}"

    def set_world(self, rank: int, world_size: int) -> None:
        """Tell the loss which rank this is, so the gathered logits use the right labels."""
        self.clip_loss.rank, self.clip_loss.world_size = rank, world_size

    def logit_scale(self, anchor: str, other: str) -> Tensor:
        return self.log_scales[self.key(anchor, other)].exp().clamp(max=self.max_logit_scale)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"loss": mean over pairs, "<anchor>__<other>": pair loss}`` from ``{m: [B, P, D]}`` embeddings.

        Steps where either modality is masked out are left out of that pair's loss.
        """
        losses: dict[str, Tensor] = {}
        for anchor, other in self.pairs:
            keep = (masks[anchor] & masks[other]).reshape(-1)
            a = F.normalize(embeddings[anchor].reshape(-1, embeddings[anchor].shape[-1])[keep], dim=-1)
            b = F.normalize(embeddings[other].reshape(-1, embeddings[other].shape[-1])[keep], dim=-1)
            losses[self.key(anchor, other)] = self.clip_loss(a, b, self.logit_scale(anchor, other))
        losses["loss"] = torch.stack(list(losses.values())).mean()
        return losses
