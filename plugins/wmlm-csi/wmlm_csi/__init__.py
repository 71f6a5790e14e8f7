"""wmlm-csi: channel state information as a wmlm modality, and a channel-prediction head.

Public API: ``CsiModality`` (modality ``csi``), ``CsiReader`` (field ``csi`` from the CSV column
``unit1_csi``), ``CsiHead`` (head ``csi``), ``ChannelNMSEdB``, ``CsiPatchEncoder``, ``normalize_csi``.
The wmlm hooks live in ``wmlm_csi.plugin`` (entry point ``csi``).
"""

from __future__ import annotations

from wmlm_csi.encoder import CsiPatchEncoder, csi_power, normalize_csi
from wmlm_csi.head import CsiHead
from wmlm_csi.metrics import ChannelNMSEdB, channel_metrics
from wmlm_csi.modality import CsiModality
from wmlm_csi.reader import NUM_ANTENNAS, NUM_SUBCARRIERS, CsiReader

__version__ = "0.1.0"
__all__ = [
    "NUM_ANTENNAS",
    "NUM_SUBCARRIERS",
    "ChannelNMSEdB",
    "CsiHead",
    "CsiModality",
    "CsiPatchEncoder",
    "CsiReader",
    "__version__",
    "channel_metrics",
    "csi_power",
    "normalize_csi",
]
