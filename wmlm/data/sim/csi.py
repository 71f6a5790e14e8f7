"""Channel state information (CSI) at the BS: the complex channel per antenna and subcarrier.

The channel of sample ``n`` on antenna ``m`` at subcarrier ``k`` is built from the very propagation paths
that give the beam powers (``channel.propagation_paths``)::

    H[n, m, k] = sum_p  gain[n, p] * element_gain(direction[n, p]) * a_m(sine[n, p])
                        * exp(-2j pi f_k (delay[n, p] - first_delay[n]))   +   noise

with ``a_m`` the 16-element half-wavelength ULA response (``channel.steering_vectors``) and ``f_k`` the
``num_subcarriers`` subcarrier offsets from the carrier, evenly spaced over the preset's measurement
bandwidth (``bandwidth_hz / num_subcarriers`` apart, centred on the carrier). Delays count from the first
arrival: the receiver's timing synchronisation removes the common delay. Beamforming a subcarrier with the
codebook (``codebook_weights().conj() @ H[n]``) and averaging ``|.|**2`` over subcarriers gives the beam
powers of ``measure_beams`` (up to noise and the discrete subcarrier grid).

Units: the DeepSense power scale of the beam files, in amplitude: ``|H|**2`` is received milliwatts times
``10**(RECEIVER_GAIN_DB / 10)`` for a pilot at full transmit power on that subcarrier. Noise is circular
complex Gaussian with the receiver noise power of the measurement bandwidth (``noise_power_mw``, same
scale) per entry, so each entry has the wideband per-antenna SNR. ``complex64 [16, num_subcarriers]``
per sample, written as ``unit1/csi_data/csi_K.npy`` (``numpy.save``) in the CSV column ``unit1_csi``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmlm.data.sim.channel import (
    NUM_ELEMENTS,
    RECEIVER_GAIN_DB,
    array_directions,
    element_gain,
    noise_power_mw,
    propagation_paths,
    steering_vectors,
)
from wmlm.data.sim.geometry import boxes_enu_to_local
from wmlm.data.sim.scenario import SimulatedScenario

CSI_STREAM = 7321  # random stream of this module (receiver noise)


@dataclass(frozen=True)
class CsiConfig:
    """Subcarriers sampled over the preset's bandwidth, and whether receiver noise is added."""

    num_subcarriers: int = 32
    noise: bool = True

    def __post_init__(self) -> None:
        if self.num_subcarriers < 1:
            raise ValueError(f"CsiConfig: num_subcarriers must be at least 1, got {self.num_subcarriers}")


def subcarrier_offsets_hz(bandwidth_hz: float, num_subcarriers: int) -> np.ndarray:
    """Subcarrier frequencies ``[K]`` relative to the carrier: ``K`` bins of ``bandwidth / K``, centred."""
    return (np.arange(num_subcarriers) - (num_subcarriers - 1) / 2) * (bandwidth_hz / num_subcarriers)


def simulate_csi(sim: SimulatedScenario, config: CsiConfig | None = None) -> np.ndarray:
    """CSI ``complex64 [N, 16, num_subcarriers]`` of every sample of ``sim`` (see the module docstring).

    Deterministic in ``(sim.preset, sim.seed)``; the noise of a sequence depends on that sequence only.
    """
    config = config or CsiConfig()
    preset = sim.preset
    scale = np.sqrt(10 ** (RECEIVER_GAIN_DB / 10))
    noise_std = np.sqrt(noise_power_mw(preset) / 2) * scale  # per real and imaginary part
    offsets_hz = subcarrier_offsets_hz(preset.bandwidth_hz, config.num_subcarriers)
    # the radio channel sees vehicles as axis-aligned boxes (x, y, length, width, height), as simulated
    boxes = boxes_enu_to_local(preset, sim.blocker_boxes_enu)[..., :5]
    out = np.empty((len(sim), NUM_ELEMENTS, config.num_subcarriers), dtype=np.complex64)
    for seq in np.unique(sim.seq_index):
        rows = np.flatnonzero(sim.seq_index == seq)
        paths = propagation_paths(preset, sim.target_xyz_local_m[rows], boxes[rows], sim.scenery)
        seen = array_directions(preset, paths.direction)  # the array's frame (boresight_deg)
        amplitude = paths.gain * element_gain(seen)  # [T, P]
        array = steering_vectors(seen[..., 0])  # [T, P, 16]
        delay = paths.delay_s - paths.delay_s.min(axis=1, keepdims=True)
        tones = np.exp(-2j * np.pi * delay[..., None] * offsets_hz)  # [T, P, K]
        channel = np.einsum("tp,tpm,tpk->tmk", amplitude, array, tones) * scale
        if config.noise:
            rng = np.random.default_rng([preset.site_seed, sim.seed, CSI_STREAM, int(seq)])
            channel = channel + noise_std * (
                rng.standard_normal(channel.shape) + 1j * rng.standard_normal(channel.shape)
            )
        out[rows] = channel
    return out
