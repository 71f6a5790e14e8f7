"""The ``csi`` modality: the complex channel per time step, encoded by a patch transformer."""

from __future__ import annotations

from torch import nn
from wmlm import Modality

from wmlm_csi.encoder import CsiPatchEncoder
from wmlm_csi.reader import NUM_ANTENNAS, NUM_SUBCARRIERS


class CsiModality(Modality):
    """CSI ``float32 [B, P, 2, antennas, subcarriers]`` (real, imaginary), in the data's amplitude units.

    The encoder normalises every step by its own mean power (``wmlm_csi.encoder.normalize_csi``): the
    absolute level varies by orders of magnitude between sites, while the structure across antennas and
    subcarriers is what says where the paths come from.

    Args:
        antennas, subcarriers: channel size per step; must match the ``csi`` reader (16 x 32 by default).
        patch_size: antennas x subcarriers per transformer token.
        width: token width. layers: transformer layers. heads: attention heads.
        dropout: dropout inside the transformer.
        field: data field that supplies the CSI.
    """

    name = "csi"
    field = "csi"
    step_shape = (2, NUM_ANTENNAS, NUM_SUBCARRIERS)

    def __init__(
        self,
        antennas: int = NUM_ANTENNAS,
        subcarriers: int = NUM_SUBCARRIERS,
        patch_size: tuple[int, int] = (4, 8),
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
        field: str = "csi",
    ) -> None:
        pa, pk = patch_size
        if antennas % pa or subcarriers % pk:
            raise ValueError(
                f"csi modality: antennas x subcarriers {antennas} x {subcarriers} must be multiples of "
                f"patch_size {tuple(patch_size)}"
            )
        if width % heads:
            raise ValueError(f"csi modality: width {width} must be a multiple of heads {heads}")
        self.antennas, self.subcarriers, self.patch_size = antennas, subcarriers, (pa, pk)
        self.width, self.layers, self.heads, self.dropout = width, layers, heads, dropout
        self.step_shape = (2, antennas, subcarriers)  # type: ignore[misc]  # per instance: size is an option
        self.field = field  # type: ignore[misc]

    def build_encoder(self, embed_dim: int) -> nn.Module:
        return CsiPatchEncoder(
            embed_dim,
            self.antennas,
            self.subcarriers,
            patch_size=self.patch_size,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            dropout=self.dropout,
        )
