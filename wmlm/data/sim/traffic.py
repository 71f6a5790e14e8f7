"""Vehicles on the street: one target pass per sequence, with the traffic around it.

Each lane carries a platoon: its vehicles share one speed profile (a constant acceleration over the pass;
in the target's lane, the target's own profile) and keep at least a safety gap, so nobody ever overlaps.
The target is a car in one of the lanes; it drives from one end of the codebook's sector to the other
(at some sites a little beyond it), wandering a little within its lane, and at sites with a crosswalk or
speed bump (``ScenarioPreset.slowdown_*``) it may brake to a crawl there and pull away again.
All quantities are in the local street frame (see ``geometry``); times start at 0 for each sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmlm.data.sim.preset import CLASS_NAMES, ScenarioPreset

# per class: (min, max) of length, width and height in metres
CLASS_SIZES_M = np.array(
    [
        [[4.1, 4.9], [1.75, 1.9], [1.4, 1.6]],  # car
        [[4.9, 6.0], [1.9, 2.1], [2.0, 2.6]],  # van
        [[7.0, 12.0], [2.45, 2.55], [3.3, 4.0]],  # truck
        [[10.5, 13.5], [2.5, 2.55], [3.0, 3.4]],  # bus
    ]
)
TARGET_SIZE_M = np.array([4.6, 1.85, 1.45])  # the measurement car of every pass
SAFETY_GAP_M = 3.0  # bumper to bumper, within a lane
VISIBLE_MARGIN_M = 30.0  # traffic is kept this far beyond the target's pass on either side
TIME_JITTER_S = 0.008  # sample clock jitter (uniform, +-)
SPEED_CHANGE = (0.7, 1.3)  # end speed / start speed of a pass: drivers speed up and slow down
# a driver who slows for a crosswalk, speed bump or driveway (``ScenarioPreset.slowdown_*``) brakes and pulls
# away over about this distance either side of it: shedding 4 of 5 m/s over 7 m is a comfortable 1.7 m/s^2
SLOWDOWN_LENGTH_M = 7.0
PROFILE_POINTS = 2001  # grid along the pass on which the target's time of arrival is integrated


@dataclass(frozen=True, eq=False)
class Pass:
    """One sequence: the target's trajectory and the other vehicles, sampled at the sequence's times.

    Attributes:
        time_s: ``[T]`` sample times from the start of the pass.
        target_xyz_m: ``[T, 3]`` transmitter position (on the target's roof).
        target_box: ``[T, 5]`` the target's box ``(x, y, length, width, height)``.
        target_heading_rad: ``[T]`` direction of travel, counter-clockwise from local +x.
        blocker_boxes: ``[T, K, 5]`` the other vehicles' boxes.
        blocker_heading_rad: ``[T, K]`` their directions of travel (0 or pi).
        blocker_class: ``[K]`` index into ``CLASS_NAMES``.
    """

    time_s: np.ndarray
    target_xyz_m: np.ndarray
    target_box: np.ndarray
    target_heading_rad: np.ndarray
    blocker_boxes: np.ndarray
    blocker_heading_rad: np.ndarray
    blocker_class: np.ndarray


def _speed_profile(v_start: float, v_end: float, duration_s: float, time_s: np.ndarray) -> np.ndarray:
    """Distance travelled ``[T]`` at times ``[T]`` under constant acceleration from v_start to v_end."""
    accel = (v_end - v_start) / duration_s
    return v_start * time_s + 0.5 * accel * time_s**2


@dataclass(frozen=True)
class TargetPlan:
    """How the target drives through one sequence (local frame).

    The pass starts ``start`` and ends ``end`` degrees off broadside (``pass_angle_deg``) on opposite
    sides, so the best beam sweeps most of the codebook. The speed changes linearly in time from
    ``v_start_mps`` to ``v_end_mps``, times a dip of ``slow_depth`` (share of the speed shed) centred at
    ``slow_x_m`` where the driver slows down; ``slow_depth = 0`` for a driver who does not.
    """

    lane: int
    direction: int  # +1 or -1 along x
    v_start_mps: float
    v_end_mps: float
    lane_y_m: float  # lane centre plus the driver's offset in the lane
    x_start_m: float
    x_end_m: float
    wander_m: float  # amplitude of the slow lateral weave within the lane
    wander_period_s: float
    wander_phase_rad: float
    slow_x_m: float = 0.0
    slow_depth: float = 0.0


def draw_target(preset: ScenarioPreset, rng: np.random.Generator) -> TargetPlan:
    """The target's lane, speeds and pass extent for one sequence."""
    lane = int(rng.integers(len(preset.lane_offsets_m)))
    direction = preset.lane_directions[lane]
    v_start = float(rng.uniform(*preset.speed_range_mps))
    v_end = float(np.clip(v_start * rng.uniform(*SPEED_CHANGE), *preset.speed_range_mps))
    start_deg, end_deg = rng.uniform(*preset.pass_angle_deg, size=2)
    lane_y = preset.lane_offsets_m[lane] + float(rng.uniform(-0.3, 0.3))
    reach = np.hypot(lane_y, preset.bs_height_m - preset.ue_height_m)  # closest approach to the BS
    slows = rng.random() < preset.slowdown_share
    slow_depth = float(rng.uniform(*preset.slowdown_depth)) if slows else 0.0
    return TargetPlan(
        lane=lane,
        direction=direction,
        v_start_mps=v_start,
        v_end_mps=v_end,
        lane_y_m=lane_y,
        x_start_m=float(-direction * reach * np.tan(np.radians(start_deg))),
        x_end_m=float(direction * reach * np.tan(np.radians(end_deg))),
        wander_m=float(rng.uniform(0.0, 0.25)),
        wander_period_s=float(rng.uniform(5.0, 12.0)),
        wander_phase_rad=float(rng.uniform(0.0, 2 * np.pi)),
        slow_x_m=preset.slowdown_x_m,
        slow_depth=slow_depth,
    )


def target_timing(plan: TargetPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance along the pass ``[G]``, the time the target gets there ``[G]`` and its speed there ``[G]``.

    Without a slowdown this is constant acceleration in time (the squared speed changes linearly with
    distance); the slowdown multiplies the speed by ``1 - slow_depth * exp(-((x - slow_x_m) / L)**2 / 2)``.
    """
    distance = np.linspace(0.0, abs(plan.x_end_m - plan.x_start_m), PROFILE_POINTS)
    share = distance / distance[-1]
    speed = np.sqrt(plan.v_start_mps**2 + (plan.v_end_mps**2 - plan.v_start_mps**2) * share)
    x = plan.x_start_m + plan.direction * distance
    speed = speed * (1 - plan.slow_depth * np.exp(-0.5 * ((x - plan.slow_x_m) / SLOWDOWN_LENGTH_M) ** 2))
    pace = 1 / speed  # seconds per metre, integrated with the trapezoid rule
    time = np.concatenate([[0.0], np.cumsum(np.diff(distance) * (pace[1:] + pace[:-1]) / 2)])
    return distance, time, speed


def draw_pass(
    preset: ScenarioPreset, target_rng: np.random.Generator, traffic_rng: np.random.Generator
) -> Pass:
    """One vehicle pass. ``target_rng`` decides the target, ``traffic_rng`` everything else, so a preset
    without traffic keeps the same target trajectories."""
    plan = draw_target(preset, target_rng)
    distance_grid, time_grid, speed_grid = target_timing(plan)
    duration_s = float(time_grid[-1])
    count = int(np.floor(duration_s * preset.sample_rate_hz)) + 1
    jitter = target_rng.uniform(-TIME_JITTER_S, TIME_JITTER_S, count)
    time_s = np.clip(np.arange(count) / preset.sample_rate_hz + jitter, 0.0, duration_s)
    time_s[0] = 0.0

    travelled = np.interp(time_s, time_grid, distance_grid)
    speed = np.interp(time_s, time_grid, speed_grid)
    omega = 2 * np.pi / plan.wander_period_s
    weave = omega * time_s + plan.wander_phase_rad
    x = plan.x_start_m + plan.direction * travelled
    y = plan.lane_y_m + plan.wander_m * np.sin(weave)
    target_xyz = np.stack([x, y, np.full(count, preset.ue_height_m)], axis=-1)
    heading = np.arctan2(plan.wander_m * omega * np.cos(weave), plan.direction * speed)
    target_box = np.concatenate([target_xyz[:, :2], np.broadcast_to(TARGET_SIZE_M, (count, 3))], axis=1)

    visible_m = max(abs(plan.x_start_m), abs(plan.x_end_m)) + VISIBLE_MARGIN_M
    boxes, headings, classes = [], [], []
    for lane in range(len(preset.lane_offsets_m)):
        if lane == plan.lane:
            profile = travelled
        else:
            v0 = traffic_rng.uniform(*preset.speed_range_mps)
            v1 = float(np.clip(v0 * traffic_rng.uniform(*SPEED_CHANGE), *preset.speed_range_mps))
            profile = _speed_profile(v0, v1, duration_s, time_s)
        keep_clear = plan.x_start_m if lane == plan.lane else None
        lane_boxes, lane_classes = _platoon(preset, lane, profile, visible_m, keep_clear, traffic_rng)
        boxes.append(lane_boxes)
        classes.append(lane_classes)
        headings.append(np.full(lane_boxes.shape[:2], 0.0 if preset.lane_directions[lane] > 0 else np.pi))
    return Pass(
        time_s,
        target_xyz,
        target_box,
        heading,
        np.concatenate(boxes, axis=1),
        np.concatenate(headings, axis=1),
        np.concatenate(classes),
    )


def _platoon(
    preset: ScenarioPreset,
    lane: int,
    travelled_m: np.ndarray,
    visible_m: float,
    keep_clear_x: float | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Vehicles of one lane: boxes ``[T, K, 5]`` over time and classes ``[K]``.

    Vehicles start as a Poisson process along the lane (``traffic_density_per_km``), pushed apart to a
    safety gap; those that never come within ``visible_m`` of the BS during the pass are dropped.
    ``keep_clear_x`` is the target's start position in its own lane: no vehicle may overlap it.
    """
    direction = preset.lane_directions[lane]
    span_m = travelled_m[-1]
    # at t=0 the platoon must cover everything that will drive through the visible stretch
    low = -visible_m - (span_m if direction > 0 else 0.0)
    high = visible_m + (span_m if direction < 0 else 0.0)
    count = rng.poisson(preset.traffic_density_per_km * (high - low) / 1000)
    mix = np.asarray(preset.vehicle_mix, dtype=np.float64)
    classes = rng.choice(len(CLASS_NAMES), size=count, p=mix / mix.sum())
    sizes = (
        rng.uniform(CLASS_SIZES_M[classes, :, 0], CLASS_SIZES_M[classes, :, 1]) if count else np.zeros((0, 3))
    )
    start = np.sort(rng.uniform(low, high, count))
    for i in range(1, count):  # push each vehicle back until it clears the one ahead of it in x
        start[i] = max(start[i], start[i - 1] + (sizes[i - 1, 0] + sizes[i, 0]) / 2 + SAFETY_GAP_M)
    keep = np.ones(count, dtype=bool)
    if keep_clear_x is not None:
        keep &= np.abs(start - keep_clear_x) >= (sizes[:, 0] + TARGET_SIZE_M[0]) / 2 + SAFETY_GAP_M
    end = start + direction * span_m
    keep &= np.minimum(start, end) <= visible_m
    keep &= np.maximum(start, end) >= -visible_m
    start, sizes, classes = start[keep], sizes[keep], classes[keep]
    x = start[None, :] + direction * travelled_m[:, None]  # [T, K]
    y = np.full_like(x, preset.lane_offsets_m[lane])
    size = np.broadcast_to(sizes, (len(travelled_m), *sizes.shape))
    return np.concatenate([x[..., None], y[..., None], size], axis=-1), classes.astype(np.int64)
