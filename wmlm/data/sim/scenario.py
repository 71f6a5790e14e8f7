"""``simulate_scenario``: vehicle passes at a site (``wmlm.data.sim.preset``) measured by a 60 GHz BS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from wmlm.data.sim.channel import array_directions, measure_beams
from wmlm.data.sim.geometry import (
    Scenery,
    boxes_local_to_enu,
    enu_to_latlon_deg,
    heading_local_to_enu,
    local_to_enu,
    make_scenery,
)
from wmlm.data.sim.preset import ScenarioPreset
from wmlm.data.sim.traffic import draw_pass


@dataclass(frozen=True, eq=False)
class SimulatedScenario:
    """A simulated scenario, one row per sample, sequences (vehicle passes) one after another.

    Attributes (N samples, K = most other vehicles in any sequence):
        preset, seed: what was simulated.
        power_linear: ``[N, 64] float32`` measured beam power (element ``i`` = beam ``i + 1``).
        beam: ``[N] int64`` 1-based optimal beam, the argmax of ``power_linear``.
        seq_index: ``[N] int64`` 1-based sequence number.
        time_s: ``[N]`` time since the start of the sample's sequence.
        lat_lon: ``[N, 2]`` the vehicle's GPS fix (true position plus GPS error), degrees.
        bs_lat_lon: ``[2]`` the BS position, degrees.
        position_enu_m: ``[N, 2]`` true vehicle position east/north of the BS.
        target_xyz_local_m: ``[N, 3]`` true transmitter position in the local frame.
        los_aod_deg: ``[N]`` line-of-sight angle off the array's broadside, ``degrees(arcsin(dx / |d|))``
            with ``dx`` along the array axis (the road, unless ``preset.boresight_deg`` turns the array).
        blocked, los_loss_db: ``[N]`` line-of-sight blockage label and vehicle diffraction loss.
        target_box_enu: ``[N, 6]`` (east, north, length, width, height, heading rad from east).
        blocker_boxes_enu: ``[N, K, 6]`` the other vehicles, NaN where ``blocker_class < 0``.
        blocker_class: ``[N, K] int64`` index into ``CLASS_NAMES``, -1 for padding.
        scenery: the site's diffuse scatterers (local frame).
    """

    preset: ScenarioPreset
    seed: int
    power_linear: np.ndarray
    beam: np.ndarray
    seq_index: np.ndarray
    time_s: np.ndarray
    lat_lon: np.ndarray
    bs_lat_lon: np.ndarray
    position_enu_m: np.ndarray
    target_xyz_local_m: np.ndarray
    los_aod_deg: np.ndarray
    blocked: np.ndarray
    los_loss_db: np.ndarray
    target_box_enu: np.ndarray
    blocker_boxes_enu: np.ndarray
    blocker_class: np.ndarray
    scenery: Scenery = field(repr=False)

    def __len__(self) -> int:
        return len(self.beam)


def draw_gps_error_m(preset: ScenarioPreset, time_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """East/north GPS error ``[T, 2]``: a first-order Gauss-Markov drift with std ``gps_error_m`` per axis."""
    error = np.empty((len(time_s), 2))
    error[0] = rng.normal(0.0, preset.gps_error_m, 2)
    steps = rng.normal(0.0, 1.0, (len(time_s), 2))
    for i in range(1, len(time_s)):
        keep = np.exp(-(time_s[i] - time_s[i - 1]) / preset.gps_correlation_s)
        error[i] = keep * error[i - 1] + np.sqrt(1 - keep**2) * preset.gps_error_m * steps[i]
    return error


def _simulate_sequence(
    preset: ScenarioPreset, scenery: Scenery, seed: int, number: int
) -> dict[str, np.ndarray]:
    """Arrays of sequence ``number`` (1-based); its random streams depend on (site, seed, number) only."""
    streams = np.random.SeedSequence([preset.site_seed, seed, number]).spawn(4)
    target_rng, traffic_rng, noise_rng, gps_rng = (np.random.default_rng(s) for s in streams)
    drive = draw_pass(preset, target_rng, traffic_rng)
    measured = measure_beams(preset, drive.target_xyz_m, drive.blocker_boxes, scenery, noise_rng)
    position = local_to_enu(preset, drive.target_xyz_m[:, :2])
    bs = np.array([0.0, 0.0, preset.bs_height_m])
    delta = drive.target_xyz_m - bs
    heading = heading_local_to_enu(preset, drive.target_heading_rad)
    return {
        "power_linear": measured.power_linear,
        "time_s": drive.time_s,
        "lat_lon": enu_to_latlon_deg(
            position + draw_gps_error_m(preset, drive.time_s, gps_rng), preset.origin_lat_lon_deg
        ),
        "position_enu_m": position,
        "target_xyz_local_m": drive.target_xyz_m,
        "los_aod_deg": np.degrees(
            np.arcsin(array_directions(preset, delta)[:, 0] / np.linalg.norm(delta, axis=1))
        ),
        "blocked": measured.blocked,
        "los_loss_db": measured.los_loss_db,
        "target_box_enu": np.concatenate([position, drive.target_box[:, 2:], heading[:, None]], axis=1),
        "blocker_boxes_enu": boxes_local_to_enu(preset, drive.blocker_boxes, drive.blocker_heading_rad),
        "blocker_class": np.broadcast_to(drive.blocker_class, drive.blocker_boxes.shape[:2]),
    }


def _pad(arrays: list[np.ndarray], fill: float | int) -> np.ndarray:
    """Concatenate ``[T_i, K_i, ...]`` arrays along samples, padding the vehicle axis to the largest K."""
    width = max(a.shape[1] for a in arrays)
    padded = [
        np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=fill)
        for a in arrays
    ]
    return np.concatenate(padded)


def simulate_scenario(
    preset: ScenarioPreset,
    num_sequences: int,
    seed: int,
    on_sequence: Callable[[int], None] | None = None,
) -> SimulatedScenario:
    """Simulate ``num_sequences`` vehicle passes at ``preset``'s site.

    Deterministic in ``(preset, seed)``; sequence ``k`` is the same whatever ``num_sequences`` is.
    ``on_sequence(k)`` is called after each sequence (progress bars).
    """
    if int(num_sequences) != num_sequences or num_sequences < 1:
        raise ValueError(f"num_sequences must be a positive integer, got {num_sequences!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    scenery = make_scenery(preset, np.random.default_rng(np.random.SeedSequence([preset.site_seed])))
    parts = []
    for number in range(1, int(num_sequences) + 1):
        parts.append(_simulate_sequence(preset, scenery, seed, number))
        if on_sequence is not None:
            on_sequence(number)
    joined = {
        key: np.concatenate([p[key] for p in parts])
        for key in parts[0]
        if key not in ("blocker_boxes_enu", "blocker_class")
    }
    power = joined["power_linear"]
    return SimulatedScenario(
        preset=preset,
        seed=seed,
        power_linear=power,
        beam=np.argmax(power, axis=1).astype(np.int64) + 1,
        seq_index=np.concatenate(
            [np.full(len(p["time_s"]), i + 1, dtype=np.int64) for i, p in enumerate(parts)]
        ),
        time_s=joined["time_s"],
        lat_lon=joined["lat_lon"],
        bs_lat_lon=np.asarray(preset.origin_lat_lon_deg, dtype=np.float64),
        position_enu_m=joined["position_enu_m"],
        target_xyz_local_m=joined["target_xyz_local_m"],
        los_aod_deg=joined["los_aod_deg"],
        blocked=joined["blocked"],
        los_loss_db=joined["los_loss_db"],
        target_box_enu=joined["target_box_enu"],
        blocker_boxes_enu=_pad([p["blocker_boxes_enu"] for p in parts], np.nan),
        blocker_class=_pad([p["blocker_class"] for p in parts], -1),
        scenery=scenery,
    )
