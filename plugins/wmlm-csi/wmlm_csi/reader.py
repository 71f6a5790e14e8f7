"""The ``csi`` field: the complex channel of every CSV row, antennas x subcarriers, as real numbers.

Field ``csi``: ``float32 [N, 2, antennas, subcarriers]``; index 0 of axis 1 is the real part, 1 the
imaginary part. Values are kept as recorded (no normalisation here): the encoder and the ``csi`` head
normalise per sample, and the raw level stays available to anything else that wants it.

Files (CSV column ``unit1_csi``, paths relative to the scenario folder): ``.npy`` arrays of complex
numbers (``complex64`` or ``complex128``) of shape ``[antennas, subcarriers]``, ``[16, 32]`` by default,
as the wmlm simulator writes them (``unit1/csi_data/csi_K.npy``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from wmlm import FieldReader
from wmlm.data.table import DataError

if TYPE_CHECKING:
    from wmlm.data.table import ScenarioTable

NUM_ANTENNAS = 16
NUM_SUBCARRIERS = 32


def load_channel(path: Path, where: str, antennas: int, subcarriers: int) -> np.ndarray:
    """``float32 [2, antennas, subcarriers]`` (real, imaginary) of one ``.npy`` file; ``DataError`` naming
    ``where`` (file, row, column of the CSV cell) when the file is unusable."""
    if path.suffix.lower() != ".npy":
        raise DataError(
            f"{where}: {path} is not a .npy file; CSI is read from .npy arrays of complex numbers"
        )
    try:
        channel = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{where}: cannot read {path} as a .npy array: {exc}") from None
    if not np.iscomplexobj(channel):
        raise DataError(
            f"{where}: {path} holds {channel.dtype} values; expected complex channel coefficients (complex64)"
        )
    expected = (antennas, subcarriers)
    if channel.shape != expected:
        hint = " (transposed? antennas come first)" if channel.shape == expected[::-1] else ""
        raise DataError(
            f"{where}: {path} holds an array of shape {list(channel.shape)}; expected {list(expected)} "
            f"(antennas x subcarriers){hint}"
        )
    bad = np.argwhere(~np.isfinite(channel))
    if len(bad):
        antenna, subcarrier = bad[0]
        raise DataError(
            f"{where}: {path} holds {len(bad)} NaN or infinite values "
            f"(first at antenna {antenna}, subcarrier {subcarrier})"
        )
    return np.stack([channel.real, channel.imag]).astype(np.float32)


class CsiReader(FieldReader):
    """CSI from the ``unit1_csi`` column: ``float32 [N, 2, antennas, subcarriers]`` (real, imaginary).

    Args:
        antennas: antennas per file (first axis); must match the ``csi`` modality and head.
        subcarriers: subcarriers per file (second axis); must match the ``csi`` modality and head.
    """

    name = "csi"
    columns = ("unit1_csi",)
    dtype = np.float32

    def __init__(self, antennas: int = NUM_ANTENNAS, subcarriers: int = NUM_SUBCARRIERS) -> None:
        if antennas < 1 or subcarriers < 1:
            raise ValueError(f"csi reader: need antennas, subcarriers >= 1, got {antennas}, {subcarriers}")
        self.antennas, self.subcarriers = antennas, subcarriers

    def read(self, table: ScenarioTable) -> np.ndarray:
        column, _ = table.column(*self.columns)
        out = np.empty((len(table), 2, self.antennas, self.subcarriers), dtype=np.float32)
        for row, path in enumerate(table.paths(column)):
            out[row] = load_channel(path, table.where(row, column), self.antennas, self.subcarriers)
        return out
