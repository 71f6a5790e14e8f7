"""Ray-traced paths from the BS to many vehicle positions in one ``PathSolver`` call, and the 64 beam powers
wmlm's own codebook measures from them.

Sionna traces a single isotropic, vertically polarised antenna at the BS and at each vehicle position
(one ``Receiver`` per sample, all samples of a batch in one call). Its per-path complex coefficient,
delay and angles of departure are then combined with ``wmlm.data.sim.channel``'s 16-element ULA, element
pattern, 64-beam codebook, bandwidth averaging and receiver noise, exactly as the built-in simulator does
with its own paths: all 64 beams come from one trace and the codebook stays identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from wmlm.beams import NUM_BEAMS
from wmlm.data.sim.channel import (
    RECEIVER_GAIN_DB,
    SNAPSHOTS_PER_MEASUREMENT,
    SPEED_OF_LIGHT_MPS,
    array_factor,
    element_gain,
    noise_power_mw,
)
from wmlm.data.sim.preset import ScenarioPreset

TX_NAME = "wmlm-bs"
RX_PREFIX = "wmlm-ue"


@dataclass(frozen=True)
class SolverSettings:
    """``PathSolver`` options recorded in ``simulation.json``: reflections up to ``max_depth`` bounces, rays
    shot per source, edge diffraction, receivers per call, and the solver's own seed."""

    max_depth: int = 2
    samples_per_src: int = 100_000
    diffraction: bool = False
    batch: int = 512
    seed: int = 42


@dataclass(frozen=True, eq=False)
class TracedPaths:
    """Paths from the BS to ``N`` positions, padded to ``P`` paths each.

    Attributes:
        gain: ``[N, P]`` complex128 path coefficient (unitless: spreading, reflection and diffraction; 0 for
            padding), its phase includes the delay.
        delay_s: ``[N, P]`` propagation delay in seconds (0 for padding).
        direction: ``[N, P, 3]`` unit vector of departure at the BS, scene frame.
        los: ``[N]`` bool, a line-of-sight path exists (nothing in the scene obstructs it).
    """

    gain: np.ndarray
    delay_s: np.ndarray
    direction: np.ndarray
    los: np.ndarray


def _solve(rt: ModuleType, scene: Any, ue_xyz: np.ndarray, settings: SolverSettings) -> TracedPaths:
    """One ``PathSolver`` call for receivers at ``ue_xyz [n, 3]`` (the transmitter is already in the scene)."""
    import mitsuba as mi

    names = [f"{RX_PREFIX}{i}" for i in range(len(ue_xyz))]
    for name, xyz in zip(names, ue_xyz):
        scene.add(rt.Receiver(name, position=mi.Point3f(*(float(v) for v in xyz))))
    try:
        paths = rt.PathSolver()(
            scene,
            max_depth=settings.max_depth,
            samples_per_src=settings.samples_per_src,
            los=True,
            specular_reflection=True,
            diffuse_reflection=False,
            refraction=False,
            diffraction=settings.diffraction,
            synthetic_array=True,
            seed=settings.seed,
        )
        a_real, a_imag = paths.a
        shape = (len(ue_xyz), -1)  # [rx, rx_ant=1, tx=1, tx_ant=1, paths] -> [rx, paths]
        gain = (np.array(a_real, dtype=np.float64) + 1j * np.array(a_imag, dtype=np.float64)).reshape(shape)
        valid = np.array(paths.valid, dtype=bool).reshape(shape)
        delay = np.array(paths.tau, dtype=np.float64).reshape(shape)
        theta = np.array(paths.theta_t, dtype=np.float64).reshape(shape)
        phi = np.array(paths.phi_t, dtype=np.float64).reshape(shape)
        # a path with no interaction at its first vertex is the line of sight
        first = np.array(paths.interactions, dtype=np.int64)[0].reshape(shape)
    finally:
        for name in names:
            scene.remove(name)
    los = (valid & (first == rt.InteractionType.NONE)).any(axis=1)
    gain = np.where(valid, gain, 0.0)
    delay = np.where(valid, delay, 0.0)
    direction = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    direction = np.where(valid[..., None], direction, 0.0)
    # a fixed path order (by delay, then strength): the same paths give the same sums, bit for bit
    order = np.lexsort((-np.abs(gain), np.where(valid, delay, np.inf)), axis=1)
    pick = np.take_along_axis
    return TracedPaths(pick(gain, order, 1), pick(delay, order, 1), pick(direction, order[..., None], 1), los)


def trace_paths(
    rt: ModuleType, scene: Any, bs_xyz: np.ndarray, ue_xyz: np.ndarray, settings: SolverSettings
) -> TracedPaths:
    """Paths from a BS at ``bs_xyz [3]`` to positions ``ue_xyz [N, 3]`` (scene frame, metres), traced in
    batches of ``settings.batch`` receivers; the scene's own transmitters and receivers are left alone."""
    import mitsuba as mi

    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.add(rt.Transmitter(TX_NAME, position=mi.Point3f(*(float(v) for v in bs_xyz))))
    try:
        parts = [
            _solve(rt, scene, ue_xyz[start : start + settings.batch], settings)
            for start in range(0, len(ue_xyz), settings.batch)
        ]
    finally:
        scene.remove(TX_NAME)
    width = max(1, max(p.gain.shape[1] for p in parts))

    def pad(array: np.ndarray) -> np.ndarray:
        return np.pad(array, [(0, 0), (0, width - array.shape[1])] + [(0, 0)] * (array.ndim - 2))

    return TracedPaths(
        np.concatenate([pad(p.gain) for p in parts]),
        np.concatenate([pad(p.delay_s) for p in parts]),
        np.concatenate([pad(p.direction) for p in parts]),
        np.concatenate([p.los for p in parts]),
    )


def beam_power(
    preset: ScenarioPreset,
    paths: TracedPaths,
    array_axes: np.ndarray,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Measured power ``[N, 64]`` float32 (DeepSense units) of ``paths`` with wmlm's 64-beam codebook.

    ``array_axes [3, 3]``: rows are the array axis, its broadside and up, in the scene frame (the ULA's
    frame of ``wmlm.data.sim.channel``). The transmit power, oxygen absorption, bandwidth averaging, noise
    (``rng=None``: noiseless) and receiver gain are ``preset``'s, as in ``channel.measure_beams``.
    """
    seen = paths.direction @ np.asarray(array_axes, dtype=np.float64).T  # [N, P, 3] in the array's frame
    beam_gain = array_factor(seen[..., 0]) * element_gain(seen)[..., None]  # [N, P, 64]
    length_m = paths.delay_s * SPEED_OF_LIGHT_MPS
    amplitude = np.sqrt(10 ** (preset.tx_power_dbm / 10)) * 10 ** (
        -preset.oxygen_db_per_km * length_m / 1000 / 20
    )
    per_beam = (paths.gain * amplitude)[..., None] * beam_gain  # [N, P, 64] sqrt(mW) per path and beam
    # mean power over a flat band of width B: paths add with weight sinc(B * delay difference)
    coherence = np.sinc(preset.bandwidth_hz * (paths.delay_s[:, :, None] - paths.delay_s[:, None, :]))
    signal_mw = np.maximum(np.einsum("npb,npb->nb", per_beam.conj(), coherence @ per_beam).real, 0.0)
    if rng is not None:
        noise_mw = noise_power_mw(preset)
        dof = 2 * SNAPSHOTS_PER_MEASUREMENT
        signal_mw = rng.noncentral_chisquare(dof, dof * signal_mw / noise_mw) * noise_mw / dof
    assert signal_mw.shape[-1] == NUM_BEAMS
    return (signal_mw * 10 ** (RECEIVER_GAIN_DB / 10)).astype(np.float32)
