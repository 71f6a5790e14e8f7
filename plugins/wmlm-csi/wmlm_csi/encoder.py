"""Per-sample power normalisation of CSI and a patch transformer encoder.

CSI tensors are ``[..., 2, A, K]``: real and imaginary parts of ``A`` antennas by ``K`` subcarriers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_MIN_POWER = 1e-20  # keeps all-zero channels finite; far below any received power in the data's units


def csi_power(csi: Tensor) -> Tensor:
    """``[...]`` mean power ``mean_{a,k} |H[a, k]|^2`` of ``[..., 2, A, K]`` CSI, in the data's units squared."""
    return csi.pow(2).sum(dim=-3).mean(dim=(-2, -1))


def normalize_csi(csi: Tensor) -> Tensor:
    """``[..., 2, A, K]`` CSI divided by the RMS amplitude of its own sample: mean ``|H|^2`` becomes 1.

    The absolute level of a channel depends on transmit power, distance, blockage and the receiver's
    calibration, which differ by orders of magnitude between sites; normalising each sample leaves what
    carries over between sites: the angular (across antennas) and delay (across subcarriers) structure.
    """
    scale = csi_power(csi).clamp_min(_MIN_POWER).sqrt()
    return csi / scale[..., None, None, None]


def to_patches(csi: Tensor, patch_size: tuple[int, int]) -> Tensor:
    """``[N, 2, A, K] -> [N, (A/pa)(K/pk), 2*pa*pk]``: tokens of ``pa`` antennas x ``pk`` subcarriers, row-major."""
    n, parts, antennas, subcarriers = csi.shape
    pa, pk = patch_size
    patches = csi.reshape(n, parts, antennas // pa, pa, subcarriers // pk, pk)
    return patches.permute(0, 2, 4, 1, 3, 5).reshape(
        n, (antennas // pa) * (subcarriers // pk), parts * pa * pk
    )


class CsiPatchEncoder(nn.Module):
    """``[B, P, 2, A, K]`` CSI to ``[B, P, embed_dim]``.

    Each step is power-normalised (``normalize_csi``), cut into ``pa x pk`` antenna x subcarrier patches,
    each patch projected to a token plus a learned position embedding, mixed by a transformer encoder and
    mean-pooled. Patches keep neighbouring antennas (a direction) and subcarriers (a delay) together, and
    attention relates distant ones: a path shows up as a phase ramp across the whole array and band.

    Args:
        embed_dim: output width ``D``.
        antennas, subcarriers: ``A`` and ``K``; multiples of the patch size.
        patch_size: ``(pa, pk)`` antennas and subcarriers per token.
        width: token width. layers: transformer layers. heads: attention heads (divide ``width``).
        dropout: dropout inside the transformer.
    """

    def __init__(
        self,
        embed_dim: int,
        antennas: int,
        subcarriers: int,
        patch_size: tuple[int, int] = (4, 8),
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        pa, pk = patch_size
        if antennas % pa or subcarriers % pk:
            raise ValueError(
                f"CsiPatchEncoder: antennas x subcarriers {antennas} x {subcarriers} must be multiples of "
                f"patch_size {tuple(patch_size)}"
            )
        if width % heads:
            raise ValueError(f"CsiPatchEncoder: width {width} must be a multiple of heads {heads}")
        self.patch_size = (pa, pk)
        tokens = (antennas // pa) * (subcarriers // pk)
        self.embed = nn.Linear(2 * pa * pk, width)
        self.position = nn.Parameter(0.02 * torch.randn(tokens, width))
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=4 * width,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # nested tensors only speed up padded batches, and every CSI step has all its tokens
        self.transformer = nn.TransformerEncoder(
            layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
        )
        self.proj = nn.Linear(width, embed_dim)

    def forward(self, csi: Tensor) -> Tensor:
        batch, steps = csi.shape[:2]
        tokens = to_patches(normalize_csi(csi.reshape(batch * steps, *csi.shape[2:])), self.patch_size)
        hidden = self.transformer(self.embed(tokens) + self.position)  # [B*P, T, width]
        return self.proj(hidden.mean(dim=1)).reshape(batch, steps, -1)
