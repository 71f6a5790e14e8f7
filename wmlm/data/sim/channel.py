"""The 60 GHz channel between a vehicle's transmitter and the BS array, measured with a 64-beam codebook.

Paths (``propagation_paths``): line of sight, a ground reflection (Fresnel, horizontal polarisation, with
a roughness factor), first-order specular reflections from facades (image method), and diffuse point
scatterers (bistatic radar equation). Every path carries free-space spreading, oxygen absorption and the
knife-edge diffraction loss of the vehicles its segments pass over. ``measure_beams`` forms the 64 beams
of a 16-element half-wavelength ULA (tapered weights, patch-like elements), averages the power over the
measurement bandwidth (paths closer in delay than ``1 / bandwidth`` add coherently, others in power) and
adds receiver noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmlm.beams import NUM_BEAMS
from wmlm.data.sim.geometry import Scenery, segment_box_interval
from wmlm.data.sim.preset import ScenarioPreset

CARRIER_HZ = 60e9
SPEED_OF_LIGHT_MPS = 299_792_458.0
WAVELENGTH_M = SPEED_OF_LIGHT_MPS / CARRIER_HZ
NUM_ELEMENTS = 16  # half-wavelength spacing
CODEBOOK_HALF_WIDTH_DEG = 50.0
# beam b (1-based) steers to BEAM_SINES[b - 1], uniform in the sine of the angle off broadside: with a ULA
# the beam pattern depends on the sine difference only, so the nearest beam in sine is the strongest one
BEAM_SINES = np.linspace(-1.0, 1.0, NUM_BEAMS) * np.sin(np.radians(CODEBOOK_HALF_WIDTH_DEG))
# amplitude taper of the beamforming weights (a Hamming-like raised cosine): it widens each beam to the
# 3 dB width the DeepSense 6G power files show and lowers the sidelobes (figures: docs/results/constants.md)
TAPER_PEDESTAL = 0.54
# element power pattern cos(angle off broadside)**1.5 (a patch element: about -3 dB at 50 degrees), and
# a front-to-back ratio: the array sees almost nothing from behind its ground plane
ELEMENT_PATTERN_EXPONENT = 1.5
FRONT_TO_BACK_DB = 25.0
# gain of the receive chain from antenna port to the reported power value: received milliwatts times
# 10**(60/10) puts line-of-sight peaks at 10-30 m in the range of the DeepSense 6G power files
# (docs/results/constants.md)
RECEIVER_GAIN_DB = 60.0
THERMAL_NOISE_DBM_PER_HZ = -174.0  # kT at 290 K
# each reported beam power is the mean of this many independent noise samples: at 200 MHz that is about
# 5 us of a beam's dwell (a 64-beam sweep at 9-10 Hz leaves each beam milliseconds). The real power files
# have a flat floor, i.e. several hundred averaged samples (docs/results/constants.md)
SNAPSHOTS_PER_MEASUREMENT = 1024


def nearest_beam(sines: np.ndarray) -> np.ndarray:
    """1-based beam ``[...]`` (int64) whose steering sine is nearest to ``sines [...]``, clipped to 1..64."""
    step = BEAM_SINES[1] - BEAM_SINES[0]
    index = np.rint((np.asarray(sines, dtype=np.float64) - BEAM_SINES[0]) / step)
    return np.clip(index, 0, NUM_BEAMS - 1).astype(np.int64) + 1


def steering_vectors(sines: np.ndarray) -> np.ndarray:
    """ULA response ``[..., 16]`` (complex, unit-modulus) to plane waves at direction sines ``[...]``.

    Element positions are taken from the array centre, so the phase does not grow along the array.
    """
    element = np.arange(NUM_ELEMENTS) - (NUM_ELEMENTS - 1) / 2
    return np.exp(1j * np.pi * np.asarray(sines)[..., None] * element)


def codebook_weights() -> np.ndarray:
    """Beamforming weights ``[64, 16]`` (unit norm per beam, tapered); row ``b - 1`` is beam ``b``."""
    element = np.arange(NUM_ELEMENTS)
    taper = TAPER_PEDESTAL - (1 - TAPER_PEDESTAL) * np.cos(2 * np.pi * (element + 0.5) / NUM_ELEMENTS)
    return steering_vectors(BEAM_SINES) * (taper / np.linalg.norm(taper))


def array_factor(sines: np.ndarray) -> np.ndarray:
    """Complex beam gains ``[..., 64]`` for plane waves at sines ``[...]`` (``|.|**2`` is 11.4 on a beam's axis)."""
    return steering_vectors(sines) @ codebook_weights().conj().T


def element_gain(direction: np.ndarray) -> np.ndarray:
    """Element amplitude gain ``[...]`` towards unit vectors ``[..., 3]`` (local frame, broadside +y)."""
    cos_broadside = np.clip(direction[..., 1], 0.0, 1.0)
    power = np.maximum(cos_broadside**ELEMENT_PATTERN_EXPONENT, 10 ** (-FRONT_TO_BACK_DB / 10))
    return np.sqrt(power)


def array_directions(preset: ScenarioPreset, direction: np.ndarray) -> np.ndarray:
    """Unit vectors ``[..., 3]`` (local frame) turned into the array's frame: ``x`` along the array axis,
    ``y`` its broadside, ``z`` up. The array is yawed ``preset.boresight_deg`` off the road normal towards
    local ``+x``; at 0 (broadside to the road) the frames coincide and ``direction`` is returned as is."""
    if preset.boresight_deg == 0:
        return direction
    yaw = np.radians(preset.boresight_deg)
    axis = np.array([np.cos(yaw), -np.sin(yaw), 0.0])  # the array's +x in the local frame
    broadside = np.array([np.sin(yaw), np.cos(yaw), 0.0])
    direction = np.asarray(direction, dtype=np.float64)
    return np.stack([direction @ axis, direction @ broadside, direction[..., 2]], axis=-1)


def knife_edge_loss_db(v: np.ndarray) -> np.ndarray:
    """ITU-R P.526 single knife-edge diffraction loss in dB for Fresnel-Kirchhoff parameters ``v [...]``.

    ``J(v) = 6.9 + 20 log10(sqrt((v - 0.1)**2 + 1) + v - 0.1)`` for ``v > -0.78``, else exactly 0.
    """
    v = np.asarray(v, dtype=np.float64)
    loss = np.zeros_like(v)
    shadowed = v > -0.78
    u = v[shadowed] - 0.1
    loss[shadowed] = 6.9 + 20 * np.log10(np.sqrt(u**2 + 1) + u)
    return loss


def shadowing_loss_db(start: np.ndarray, end: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Diffraction loss in dB ``[N, Q]`` of segments ``[N, Q, 3]`` over vehicle boxes ``[N, K, 5]``.

    Each box is a knife edge along its roof where the segment crosses its footprint; the worst of the
    entry, middle and exit points counts. Losses of several boxes on one segment add up.
    """
    if boxes.shape[1] == 0:
        return np.zeros(start.shape[:2])
    s, e, b = start[:, :, None, :], end[:, :, None, :], boxes[:, None, :, :]
    t_in, t_out, hit = segment_box_interval(s, e, b)
    length = np.linalg.norm(end - start, axis=-1)[:, :, None]
    worst_v = np.full(hit.shape, -np.inf)
    for t in (t_in, (t_in + t_out) / 2, t_out):
        t = np.clip(np.nan_to_num(t), 1e-3, 1 - 1e-3)  # an end point inside a box: just next to it
        clearance = b[..., 4] - (s[..., 2] + t * (e[..., 2] - s[..., 2]))  # roof above the ray: > 0
        v = clearance * np.sqrt(2.0 / (WAVELENGTH_M * np.maximum(length, 1e-6) * t * (1 - t)))
        worst_v = np.maximum(worst_v, np.where(hit, v, -np.inf))
    return knife_edge_loss_db(worst_v).sum(axis=-1)


@dataclass(frozen=True, eq=False)
class Paths:
    """Propagation paths from each target to the BS, ready for beams (here) or CSI over subcarriers.

    Attributes:
        kind: ``[P]`` path names: ``los``, ``ground``, ``wall<i>``, ``scatterer<i>``.
        gain: ``[N, P]`` complex amplitude at the carrier in sqrt(mW) at the BS array centre, with transmit
            power, spreading, reflection, absorption and shadowing; 0 for a path that does not exist.
        delay_s: ``[N, P]`` propagation delay.
        direction: ``[N, P, 3]`` unit vector from the BS towards where the path arrives from (local frame;
            ``array_directions`` turns it into the array's frame).
        shadow_loss_db: ``[N, P]`` vehicle diffraction loss applied to each path (capped).
    """

    kind: tuple[str, ...]
    gain: np.ndarray
    delay_s: np.ndarray
    direction: np.ndarray
    shadow_loss_db: np.ndarray


def _fresnel_horizontal(grazing_rad: np.ndarray, permittivity: float) -> np.ndarray:
    """Reflection coefficient of a smooth dielectric half-space for horizontal polarisation."""
    sin_g, cos_g = np.sin(grazing_rad), np.cos(grazing_rad)
    root = np.sqrt(permittivity - cos_g**2)
    return (sin_g - root) / (sin_g + root)


def propagation_paths(
    preset: ScenarioPreset, ue_xyz: np.ndarray, boxes: np.ndarray, scenery: Scenery
) -> Paths:
    """All paths from targets ``ue_xyz [N, 3]`` (local frame) to the BS, shadowed by ``boxes [N, K, 5]``."""
    ue = np.asarray(ue_xyz, dtype=np.float64)
    n = len(ue)
    bs = np.array([0.0, 0.0, preset.bs_height_m])
    kinds: list[str] = []
    amplitude, points = [], []  # per path: [N] complex factor beyond spreading; [N, 3] interaction point
    lengths, directions = [], []

    def add(
        kind: str, factor: np.ndarray, length: np.ndarray, first_leg: np.ndarray, via: np.ndarray | None
    ) -> None:
        kinds.append(kind)
        amplitude.append(np.broadcast_to(factor, (n,)).astype(np.complex128))
        lengths.append(length)
        directions.append(first_leg / np.linalg.norm(first_leg, axis=-1, keepdims=True))
        points.append(via)

    spreading = WAVELENGTH_M / (4 * np.pi)
    los = ue - bs
    los_length = np.linalg.norm(los, axis=-1)
    add("los", spreading / los_length, los_length, los, None)

    if preset.ground_permittivity > 0:
        image = ue * np.array([1.0, 1.0, -1.0])
        leg = image - bs
        length = np.linalg.norm(leg, axis=-1)
        grazing = np.arcsin((bs[2] + ue[:, 2]) / length)
        # Rayleigh roughness: a rough asphalt surface scatters part of the specular energy away
        roughness = np.exp(-2 * (2 * np.pi / WAVELENGTH_M * preset.ground_roughness_m * np.sin(grazing)) ** 2)
        coefficient = _fresnel_horizontal(grazing, preset.ground_permittivity) * roughness
        bounce = bs + (bs[2] / (bs[2] + ue[:, 2]))[:, None] * leg
        add("ground", spreading / length * coefficient, length, leg, bounce)

    for i, wall in enumerate(preset.walls):
        image = ue * np.array([1.0, -1.0, 1.0]) + np.array([0.0, 2 * wall.y_m, 0.0])
        leg = image - bs
        length = np.linalg.norm(leg, axis=-1)
        bounce = bs + (wall.y_m / leg[:, 1])[:, None] * leg
        on_wall = (
            (bounce[:, 0] >= wall.x_min_m) & (bounce[:, 0] <= wall.x_max_m) & (bounce[:, 2] <= wall.height_m)
        )
        reflection = -(10 ** (-wall.loss_db / 20)) * on_wall  # a phase flip, as for a dense dielectric
        add(f"wall{i}", spreading / length * reflection, length, leg, bounce)

    for i in range(len(scenery)):
        spot = scenery.positions_m[i]
        to_bs = np.linalg.norm(spot - bs)
        to_ue = np.linalg.norm(ue - spot, axis=-1)
        bistatic = WAVELENGTH_M * np.sqrt(scenery.rcs_m2[i]) / ((4 * np.pi) ** 1.5 * to_bs * to_ue)
        # the radar equation assumes the far field; close to a large object it would outshine a mirror, so
        # cap it at a perfect specular reflection over the same path length
        bounded = np.minimum(bistatic, spreading / (to_bs + to_ue))
        factor = bounded * np.exp(1j * scenery.phase_rad[i])
        add(
            f"scatterer{i}",
            factor,
            to_bs + to_ue,
            np.broadcast_to(spot - bs, (n, 3)),
            np.broadcast_to(spot, (n, 3)),
        )

    length = np.stack(lengths, axis=1)  # [N, P]
    shadow_db = _path_shadowing_db(preset, bs, ue, points, np.asarray(boxes, dtype=np.float64))
    tx_amplitude = np.sqrt(10 ** (preset.tx_power_dbm / 10))  # sqrt(mW)
    oxygen_db = preset.oxygen_db_per_km * length / 1000
    gain = (
        tx_amplitude
        * np.stack(amplitude, axis=1)
        * 10 ** (-(oxygen_db + shadow_db) / 20)
        * np.exp(-2j * np.pi * length / WAVELENGTH_M)
    )
    return Paths(tuple(kinds), gain, length / SPEED_OF_LIGHT_MPS, np.stack(directions, axis=1), shadow_db)


def _path_shadowing_db(
    preset: ScenarioPreset, bs: np.ndarray, ue: np.ndarray, points: list[np.ndarray | None], boxes: np.ndarray
) -> np.ndarray:
    """Vehicle diffraction loss ``[N, P]`` of every path: its one or two segments, capped at the high end
    of ``preset.blockage_loss_db`` (deeper shadows are filled by diffraction around the vehicle's sides)."""
    n = len(ue)
    starts, ends, owner = [], [], []
    for p, via in enumerate(points):
        if via is None:
            starts.append(np.broadcast_to(bs, (n, 3)))
            ends.append(ue)
            owner.append(p)
        else:
            starts += [np.broadcast_to(bs, (n, 3)), via]
            ends += [via, ue]
            owner += [p, p]
    segment_db = shadowing_loss_db(np.stack(starts, axis=1), np.stack(ends, axis=1), boxes)  # [N, Q]
    membership = np.zeros((len(owner), len(points)))
    membership[np.arange(len(owner)), owner] = 1.0
    return np.minimum(segment_db @ membership, preset.blockage_loss_db[1])


@dataclass(frozen=True, eq=False)
class BeamMeasurement:
    """What the BS reports for each target position.

    Attributes:
        power_linear: ``[N, 64]`` float32 received power per beam (element ``i`` is beam ``i + 1``) in the
            DeepSense units (milliwatts times ``10**(RECEIVER_GAIN_DB / 10)``).
        blocked: ``[N]`` bool, the line of sight loses at least ``preset.blockage_loss_db[0]`` to vehicles.
        los_loss_db: ``[N]`` vehicle diffraction loss of the line of sight, within ``blockage_loss_db`` when
            blocked, exactly 0 when the ray clears every roof by more than the Fresnel zone.
        paths: the propagation paths the power was formed from.
    """

    power_linear: np.ndarray
    blocked: np.ndarray
    los_loss_db: np.ndarray
    paths: Paths


def noise_power_mw(preset: ScenarioPreset) -> float:
    """Receiver noise power over the measurement bandwidth: thermal floor plus noise figure."""
    return 10 ** (
        (THERMAL_NOISE_DBM_PER_HZ + 10 * np.log10(preset.bandwidth_hz) + preset.noise_figure_db) / 10
    )


def measure_beams(
    preset: ScenarioPreset,
    ue_xyz: np.ndarray,
    boxes: np.ndarray,
    scenery: Scenery,
    rng: np.random.Generator | None = None,
) -> BeamMeasurement:
    """Beam powers at the BS for transmitters at ``ue_xyz [N, 3]`` among vehicles ``boxes [N, K, 5]``.

    ``rng=None`` gives the noiseless expected signal power; with a generator each beam's power is the mean
    of ``SNAPSHOTS_PER_MEASUREMENT`` snapshots of signal plus complex Gaussian noise.
    """
    paths = propagation_paths(preset, ue_xyz, boxes, scenery)
    seen = array_directions(preset, paths.direction)  # the array's frame (boresight_deg)
    beam_gain = array_factor(seen[..., 0]) * element_gain(seen)[..., None]  # [N, P, 64]
    per_beam = paths.gain[..., None] * beam_gain  # [N, P, 64] complex amplitude of each path in each beam
    # mean power over a flat band of width B: paths add with weight sinc(B * delay difference)
    delay_gap = paths.delay_s[:, :, None] - paths.delay_s[:, None, :]
    coherence = np.sinc(preset.bandwidth_hz * delay_gap)  # [N, P, P]
    signal_mw = np.maximum(np.einsum("npb,npb->nb", per_beam.conj(), coherence @ per_beam).real, 0.0)
    if rng is not None:
        noise_mw = noise_power_mw(preset)
        dof = 2 * SNAPSHOTS_PER_MEASUREMENT
        chi2 = rng.noncentral_chisquare(dof, dof * signal_mw / noise_mw)
        signal_mw = chi2 * noise_mw / dof
    power = (signal_mw * 10 ** (RECEIVER_GAIN_DB / 10)).astype(np.float32)
    los_loss_db = paths.shadow_loss_db[:, 0]
    return BeamMeasurement(power, los_loss_db >= preset.blockage_loss_db[0], los_loss_db, paths)
