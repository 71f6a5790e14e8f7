"""Stage-1 anchor alignment: symmetric InfoNCE between each modality and the anchor(s)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from open_clip.loss import ClipLoss, gather_features
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
    and L2-normalised, and the matching step of the anchor is the positive. Steps where either modality of
    a pair is masked out are left out of that pair's loss. The loss itself is open_clip's ``ClipLoss``.

    Several processes (DDP, FSDP; ``set_world(rank, world_size)``): every rank gathers the ``[B*P, D]``
    embeddings and the masks of all ranks with open_clip's ``gather_features`` and computes the loss of
    the global batch, so negatives span all ranks and the value equals the single-process loss on the
    ranks' batches concatenated in rank order. Masked steps are dropped *after* the gather, not before:
    an all-gather needs one shape on every rank, and the number of kept steps differs between ranks as
    soon as a mask does (``ClipLoss``'s own gather would fail or mix up rows then). Ranks with fewer rows
    (a smaller last batch) are padded with masked rows for the same reason.

    Args:
        pairs: ``(anchor, other)`` modality pairs.
        init_temperature: CLIP's initial temperature (logit scale ``1 / T``).
        max_logit_scale: the learnable scale is clamped to this (100 in CLIP).
        gather_with_grad: let gradients flow back through the gathered embeddings to the ranks that
            computed them. Every rank then holds ``world_size`` times the single-process gradient of its
            own embeddings, which DDP's averaging over ranks turns into exactly the single-process
            gradient. Without it only a rank's own rows carry gradient and the encoders' averaged gradient
            is ``1 / world_size`` of the single-process one (the temperature's is unchanged).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        gather_with_grad: bool = True,
    ) -> None:
        super().__init__()
        self.pairs = list(pairs)
        self.max_logit_scale = max_logit_scale
        self.gather_with_grad = gather_with_grad
        self.rank, self.world_size = 0, 1
        self.log_scales = nn.ParameterDict(
            {
                self.key(a, m): nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
                for a, m in self.pairs
            }
        )
        # always the single-process loss: gathering happens here, before the masked rows are dropped
        self.clip_loss = ClipLoss(cache_labels=True)

    @staticmethod
    def key(anchor: str, other: str) -> str:
        return f"{anchor}__{other}"

    def set_world(self, rank: int, world_size: int) -> None:
        """Tell the loss which rank this is and how many there are; ``world_size > 1`` gathers across ranks."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"alignment: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        self.rank, self.world_size = rank, world_size

    def logit_scale(self, anchor: str, other: str) -> Tensor:
        return self.log_scales[self.key(anchor, other)].exp().clamp(max=self.max_logit_scale)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"loss": mean over pairs, "<anchor>__<other>": pair loss}`` from ``{m: [B, P, D]}`` embeddings.

        ``masks`` are ``{m: [B, P] bool}``; steps where either modality of a pair is False are left out.
        """
        losses: dict[str, Tensor] = {}
        for anchor, other in self.pairs:
            keep = (masks[anchor] & masks[other]).reshape(-1)
            a = F.normalize(embeddings[anchor].reshape(-1, embeddings[anchor].shape[-1]), dim=-1)
            b = F.normalize(embeddings[other].reshape(-1, embeddings[other].shape[-1]), dim=-1)
            if self.world_size > 1:
                a, b, keep = self._gather(a, b, keep)
            losses[self.key(anchor, other)] = self.clip_loss(
                a[keep], b[keep], self.logit_scale(anchor, other)
            )
        losses["loss"] = torch.stack(list(losses.values())).mean()
        return losses

    @torch.no_grad()
    def retrieval(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Top-1 retrieval accuracy of every pair, both ways: did alignment learn anything?

        For each kept step of the anchor, is the other modality's embedding of the *same* step the most
        similar (cosine) among all kept steps of the batch (``[B*P]`` candidates), and the other way round.
        Chance is ``1 / kept steps``. Computed on this process's batch (no gather): a diagnostic, not a loss.

        Returns:
            ``{"<anchor>__<other>/<anchor>_to_<other>": accuracy, "<anchor>__<other>/<other>_to_<anchor>": ...}``
            for pairs with at least two kept steps.
        """
        scores: dict[str, Tensor] = {}
        for anchor, other in self.pairs:
            keep = (masks[anchor] & masks[other]).reshape(-1)
            if int(keep.sum()) < 2:
                continue
            a = F.normalize(embeddings[anchor].reshape(-1, embeddings[anchor].shape[-1])[keep], dim=-1)
            b = F.normalize(embeddings[other].reshape(-1, embeddings[other].shape[-1])[keep], dim=-1)
            similarity = a @ b.T  # [N, N]: row i = anchor step i against every step of the other modality
            truth = torch.arange(len(a), device=a.device)
            key = self.key(anchor, other)
            scores[f"{key}/{anchor}_to_{other}"] = (similarity.argmax(dim=1) == truth).float().mean()
            scores[f"{key}/{other}_to_{anchor}"] = (similarity.argmax(dim=0) == truth).float().mean()
        return scores

    def _gather(self, a: Tensor, b: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rows ``[world_size * N, D]`` of every rank in rank order, and their keep flags ``[world_size * N]``.

        ``N`` is the largest row count of any rank; ranks with fewer rows pad with masked-out rows.
        """
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                f"alignment: world_size={self.world_size} but torch.distributed is not initialised"
            )
        rows = torch.tensor([len(keep)], device=keep.device)
        dist.all_reduce(rows, op=dist.ReduceOp.MAX)
        missing = int(rows.item()) - len(keep)
        flags = keep.to(torch.uint8)  # gloo cannot all-gather bool tensors
        if missing:
            a, b = F.pad(a, (0, 0, 0, missing)), F.pad(b, (0, 0, 0, missing))
            flags = F.pad(flags, (0, missing))
        all_a, all_b = gather_features(
            a,
            b,
            local_loss=False,
            gather_with_grad=self.gather_with_grad,
            rank=self.rank,
            world_size=self.world_size,
        )
        all_flags = [torch.empty_like(flags) for _ in range(self.world_size)]
        dist.all_gather(all_flags, flags)
        return all_a, all_b, torch.cat(all_flags).bool()
