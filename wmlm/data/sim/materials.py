"""What the simulated street looks like to the camera: colours of the ground, facades and vehicles.

Colours are display RGB in ``[0, 1]`` (albedo: multiplied by the light that falls on a surface);
emission is light a surface gives off itself (lit windows, lamps, head- and taillights at night), added
after lighting. Everything here is a pure function of positions, so the static scene can be computed
once per site and the vehicles once per frame.
"""

from __future__ import annotations

import numpy as np

from wmlm.data.sim.preset import ScenarioPreset
from wmlm.data.sim.raycast import FACE_BACK, FACE_FRONT, FACE_LEFT, FACE_RIGHT

COLOUR_STREAM = 7301  # random stream of vehicle and facade colours
# (RGB, weight): the colours cars are sold in, and those of trucks and buses
CAR_PALETTE = (
    ((0.88, 0.88, 0.86), 0.24), ((0.06, 0.06, 0.07), 0.20), ((0.42, 0.43, 0.45), 0.17),
    ((0.68, 0.69, 0.70), 0.12), ((0.10, 0.20, 0.45), 0.09), ((0.60, 0.07, 0.07), 0.09),
    ((0.55, 0.50, 0.40), 0.04), ((0.12, 0.30, 0.16), 0.03), ((0.85, 0.60, 0.10), 0.02),
)  # fmt: skip
BIG_PALETTE = (
    ((0.90, 0.90, 0.88), 0.50), ((0.70, 0.70, 0.68), 0.20), ((0.85, 0.70, 0.15), 0.10),
    ((0.15, 0.30, 0.60), 0.10), ((0.60, 0.10, 0.10), 0.10),
)  # fmt: skip
FACADE_PALETTE = (
    (0.62, 0.60, 0.56), (0.55, 0.32, 0.25), (0.75, 0.68, 0.55), (0.40, 0.48, 0.56), (0.82, 0.80, 0.76),
)  # fmt: skip
ASPHALT, PAVING, KERB, GRASS = (0.24, 0.24, 0.26), (0.58, 0.56, 0.53), (0.72, 0.72, 0.70), (0.28, 0.36, 0.20)
WHITE_PAINT, YELLOW_PAINT, POST = (0.85, 0.85, 0.82), (0.85, 0.68, 0.15), (0.40, 0.40, 0.42)
GLASS, TYRE, CARGO, BUMPER = (0.20, 0.24, 0.30), (0.05, 0.05, 0.05), (0.85, 0.85, 0.83), (0.10, 0.10, 0.11)
HEAD_LENS, TAIL_LENS = (0.85, 0.85, 0.80), (0.70, 0.08, 0.08)
HEAD_GLOW, TAIL_GLOW, LAMP_GLOW = (2.5, 2.4, 2.1), (1.6, 0.12, 0.08), (1.0, 0.78, 0.45)


def _hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random value in [0, 1) per integer pair (which facade windows are lit)."""
    return np.modf(np.abs(np.sin(a * 12.9898 + b * 78.233)) * 43758.5453)[0]


def ground_albedo(preset: ScenarioPreset, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ground colour ``[R, 3]`` at local points ``x, y [R]``: pavements, kerbs, asphalt with lane markings
    (dashed between lanes of one direction, double yellow between opposite ones), lawns behind detached
    houses, paving elsewhere."""
    lanes = np.asarray(preset.lane_offsets_m)
    road_low, road_high = lanes.min() - 1.75, lanes.max() + 1.75
    detached = bool(preset.walls) and max(w.x_max_m - w.x_min_m for w in preset.walls) < 100.0
    out = np.where(((y > road_high + 4.0) & detached)[:, None], GRASS, PAVING)
    road = (y >= road_low) & (y <= road_high)
    out[road] = ASPHALT
    out[(np.abs(y - road_low) < 0.15) | (np.abs(y - road_high) < 0.15)] = KERB
    out[road & ((np.abs(y - road_low - 0.4) < 0.08) | (np.abs(y - road_high + 0.4) < 0.08))] = WHITE_PAINT
    for i in range(len(lanes) - 1):
        middle = (lanes[i] + lanes[i + 1]) / 2
        if preset.lane_directions[i] == preset.lane_directions[i + 1]:
            out[(np.abs(y - middle) < 0.07) & (np.mod(x, 9.0) < 3.0)] = WHITE_PAINT
        else:
            out[np.abs(np.abs(y - middle) - 0.12) < 0.06] = YELLOW_PAINT
    return out


def facade_albedo(
    preset: ScenarioPreset, which: np.ndarray, x: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Colour and emission ``[R, 3]`` of hits on walls ``which [R]`` at ``x, z [R]``: plaster or brick
    (one colour per wall and site) with a window grid; at night some windows and the shop fronts are lit."""
    rng = np.random.default_rng([preset.site_seed, COLOUR_STREAM])
    colours = np.array(FACADE_PALETTE)[rng.integers(len(FACADE_PALETTE), size=max(len(preset.walls), 1))]
    heights = np.array([w.height_m for w in preset.walls] or [0.0])
    floor, column = np.floor(z / 3.3), np.floor(x / 3.0)
    window = (np.mod(z, 3.3) > 0.9) & (np.mod(z, 3.3) < 2.5) & (np.mod(x, 3.0) > 0.7) & (np.mod(x, 3.0) < 2.3)
    window &= z < heights[which] - 0.8
    albedo = np.where(window[:, None], GLASS, colours[which])
    albedo[z > heights[which] - 0.4] *= 0.7  # cornice
    emission = np.zeros_like(albedo)
    if preset.night:
        lit = window & ((_hash(column + 31 * which, floor) < 0.3) | (floor == 0))
        emission[lit] = np.array(LAMP_GLOW) * 0.6
    return albedo, emission


def vehicle_colours(classes: np.ndarray, seq_index: np.ndarray, site_seed: int, seed: int) -> np.ndarray:
    """Body colour ``[S + 1, 1 + K, 3]`` of every vehicle slot per sequence (row ``s`` for ``seq_index`` s).

    Args:
        classes: ``[N, 1 + K]`` vehicle classes per sample (``raycast.vehicle_boxes``), -1 for padding.
        seq_index: ``[N]`` 1-based sequence of each sample.
        site_seed, seed: key the random draws with the sequence number.
    """
    slots = classes.shape[1]
    colours = np.zeros((int(seq_index.max()) + 1, slots, 3))
    palettes = []
    for palette in (CAR_PALETTE, BIG_PALETTE):
        weights = np.array([w for _, w in palette])
        palettes.append((np.array([c for c, _ in palette]), np.cumsum(weights) / weights.sum()))
    for seq in np.unique(seq_index):
        first = int(np.argmax(seq_index == seq))
        # one row of draws per slot, so a sequence's colours do not depend on how many slots there are
        draws = np.random.default_rng([site_seed, seed, COLOUR_STREAM, int(seq)]).random((slots, 4))
        for slot in range(slots):
            table, cumulative = palettes[int(classes[first, slot] >= 2)]
            pick = min(int(np.searchsorted(cumulative, draws[slot, 0])), len(table) - 1)
            colours[seq, slot] = np.clip(table[pick] * (0.92 + 0.16 * draws[slot, 1:]), 0.0, 1.0)
    return colours


def vehicle_surface(
    face: np.ndarray, local: np.ndarray, size: np.ndarray, cls: np.ndarray, body: np.ndarray, night: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Colour and emission ``[R, 3]`` of vehicle hits: body, glass, wheels, bumpers, head- and taillights.

    Args: faces ``[R]``, box coordinates ``(u, v, w)`` ``[R, 3]`` (``raycast``), box sizes ``(length,
    width, height)`` ``[R, 3]``, classes ``[R]`` (0 car, 1 van, 2 truck, 3 bus), body colours ``[R, 3]``.
    """
    u, v, w = local.T
    length, width, height = size.T
    rel = w / height
    side, front, back = (face == FACE_LEFT) | (face == FACE_RIGHT), face == FACE_FRONT, face == FACE_BACK
    small, truck, bus = cls <= 1, cls == 2, cls == 3
    albedo = body.copy()
    albedo[truck & (u < length / 2 - 2.4)] = CARGO  # a light cargo box behind the coloured cab
    glass = side & small & (rel > 0.58) & (rel < 0.92) & (np.abs(u) < 0.36 * length)
    glass |= side & bus & (rel > 0.45) & (rel < 0.85) & (np.abs(u) < 0.46 * length)
    glass |= side & truck & (u > length / 2 - 2.2) & (rel > 0.55) & (rel < 0.85)
    screen = np.where(small, (rel > 0.58) & (rel < 0.9), (rel > 0.5) & (rel < 0.88))
    glass |= (front | (back & ~truck)) & (np.abs(v) < 0.42 * width) & screen
    albedo[glass] = GLASS
    albedo[(side | front | back) & (w < 0.3)] = BUMPER
    axle, radius = length / 2 - np.where(small, 0.85, 1.4), np.where(small, 0.33, 0.5)
    albedo[side & ((np.abs(u) - axle) ** 2 + (w - radius) ** 2 < radius**2)] = TYRE
    head = front & (np.abs(v) > 0.25 * width) & (np.abs(v) < 0.44 * width) & (w > 0.55) & (w < 0.8)
    tail = back & (np.abs(v) > 0.3 * width) & (np.abs(v) < 0.46 * width) & (w > 0.75) & (w < 1.0)
    albedo[head], albedo[tail] = HEAD_LENS, TAIL_LENS
    emission = np.zeros_like(albedo)
    if night:
        emission[head], emission[tail] = HEAD_GLOW, TAIL_GLOW
    return albedo, emission
