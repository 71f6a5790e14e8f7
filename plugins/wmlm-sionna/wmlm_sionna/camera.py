"""The BS camera in a ray-traced scene: Mitsuba renders the Sionna scene, with the vehicle in it, from the BS.

Pose as the built-in camera's (``wmlm.data.sim.camera``): at the BS array centre, facing the array broadside
and pitched down towards the middle of the lanes, image right along the array axis (the increasing-beam
side), 90 degree horizontal field of view, 128x72 pixels by default. The vehicle is a box of the built-in
simulator's car size (``traffic.TARGET_SIZE_M``), moved to each sample's position before the frame is
rendered; it is added to the scene after the paths were traced, so it does not change the radio channel
(the transmitter sits on its roof, as in the built-in simulator).

Frames are Sionna RT's own visual rendering of the scene (its materials' colours, path-traced by Mitsuba
with ``spp`` samples per pixel and a fixed sampler seed): the same scene, poses and ``spp`` give the same
bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from wmlm.data.sim.traffic import TARGET_SIZE_M

from wmlm_sionna.site import Site

CAR_NAME = "wmlm-car"
CAR_MATERIAL = "metal"  # ITU type of the car's radio material (it carries no radio paths: see above)
# the 12 triangles of a box around the origin, 0 <= z <= 1, outward faces (vertex k: bits x, y, z)
_BOX_FACES = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))


@dataclass(frozen=True)
class SceneCameraConfig:
    """Image size in pixels, horizontal field of view in degrees and samples per pixel."""

    width_px: int = 128
    height_px: int = 72
    hfov_deg: float = 90.0
    spp: int = 16


def write_car_mesh(path: Path, size_m: tuple[float, float, float] = TARGET_SIZE_M) -> Path:
    """An OBJ box ``length x width x height`` (metres), centred on the origin in x and y, standing on z = 0."""
    length, width, height = size_m
    corners = [
        ((x - 0.5) * length, (y - 0.5) * width, z * height) for x in (0, 1) for y in (0, 1) for z in (0, 1)
    ]
    lines = [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in corners]
    for a, b, c, d in _BOX_FACES:
        lines += [f"f {a + 1} {b + 1} {c + 1}", f"f {a + 1} {c + 1} {d + 1}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


class SceneCamera:
    """Renders frames ``[H, W, 3] uint8`` of ``scene`` from the BS of ``site`` with a car at given positions.

    The visual scene (Sionna's conversion of the radio scene for Mitsuba, with the car in it) is built once;
    each frame moves the car's vertices and renders. Rendering needs Mitsuba's RGB variant and ray tracing
    its polarised one, and every switch re-imports Mitsuba's Python plugins (0.15 s): render a run of frames
    inside ``with camera:``, which switches once. ``Scene.render`` switches twice and rebuilds the visual
    scene per frame, 0.2 s per 128x72 frame on one core against about 0.05 s here.

    Args:
        rt: the ``sionna.rt`` module (``backend.load_sionna``).
        scene: the loaded Sionna scene; the car is added to it (``close`` removes it).
        site: where the BS stands and which way its array looks.
        config: image size, field of view, samples per pixel.
        mesh_folder: where the car's OBJ file is written.
    """

    def __init__(
        self, rt: ModuleType, scene: Any, site: Site, config: SceneCameraConfig, mesh_folder: Path
    ) -> None:
        import drjit as dr
        import mitsuba as mi
        from sionna.rt.renderer import visual_scene_from_wireless_scene
        from sionna.rt.utils.render import make_render_sensor

        self._mi, self._scene, self.config = mi, scene, config
        mesh = write_car_mesh(mesh_folder / f"{CAR_NAME}.obj")
        material = rt.ITURadioMaterial(f"{CAR_NAME}-{CAR_MATERIAL}", CAR_MATERIAL, thickness=0.01)
        scene.edit(add=[rt.SceneObject(fname=str(mesh), name=CAR_NAME, radio_material=material)])
        # look at the ground across the middle of the lanes, along the broadside
        middle_m = float(np.mean(site.preset.lane_offsets_m))
        target = site.bs_xyz + middle_m * site.axes[1]
        target[2] = site.ground_m
        camera = rt.Camera(position=_point(mi, site.bs_xyz), look_at=_point(mi, target))
        self._variant = "cuda_ad_rgb" if dr.backend_v(mi.Float) == dr.JitBackend.CUDA else "llvm_ad_rgb"
        with mi.util.scoped_set_variant(self._variant):
            sensor = make_render_sensor(
                scene, camera=camera, resolution=(config.width_px, config.height_px), fov=config.hfov_deg
            )
            self._visual = mi.load_dict(visual_scene_from_wireless_scene(scene, sensor=sensor))
            self._params = mi.traverse(self._visual)
            keys = [k for k in self._params.keys() if CAR_NAME in k and k.endswith("vertex_positions")]
            if len(keys) != 1:
                raise RuntimeError(f"wmlm-sionna: the car's mesh is not in Sionna's visual scene ({keys})")
            self._key = keys[0]
            box = np.array(self._params[self._key], dtype=np.float64).reshape(-1, 3)
        # cars drive along the street: the box's length along the road axis, standing on the ground
        road = site.axes[0]
        yaw = np.arctan2(road[1], road[0])
        rotation = np.array(
            [[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]]
        )
        self._box = box @ rotation.T
        self._ground_m = site.ground_m
        self._previous = mi.variant()

    def __enter__(self) -> SceneCamera:
        self._previous = self._mi.variant()
        self._mi.set_variant(self._variant)
        return self

    def __exit__(self, *exc: object) -> None:
        self._mi.set_variant(self._previous)

    def render(self, car_xyz: np.ndarray) -> np.ndarray:
        """The frame ``[H, W, 3] uint8`` with the car's roof centre above ``car_xyz [3]`` (scene frame, metres;
        the box stands on the ground below it). Fast inside ``with camera:``, correct anywhere."""
        mi = self._mi
        if mi.variant() != self._variant:
            with self:
                return self.render(car_xyz)
        offset = np.array([car_xyz[0], car_xyz[1], self._ground_m])
        self._params[self._key] = mi.Float((self._box + offset).astype(np.float32).ravel())
        self._params.update()
        linear = mi.render(self._visual, spp=self.config.spp)
        bitmap = mi.Bitmap(linear).convert(component_format=mi.Struct.Type.UInt8, srgb_gamma=True)
        return np.ascontiguousarray(np.array(bitmap)[..., :3])

    def close(self) -> None:
        """Remove the car from the radio scene."""
        self._scene.edit(remove=[CAR_NAME])


def _point(mi: ModuleType, xyz: np.ndarray) -> Any:
    return mi.Point3f(*(float(v) for v in xyz))
