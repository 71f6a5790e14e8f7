"""Shared helpers of the wmlm-sionna tests: the plugin registered at run time, a private cache, the LLVM
skip, an open scene (a ground plane only) written by the tests, and engine runs shared by a module.

Not a ``conftest.py`` on purpose (as in ``plugins/wmlm-lidar``): pytest imports every conftest as the module
``conftest``, so a second one would replace wmlm's ``tests/conftest.py`` when both folders run together.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import wmlm_sionna  # noqa: F401  # installed (pip install -e ./plugins/wmlm-sionna)
except ModuleNotFoundError:  # a plain checkout: import the package from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmlm import registry
from wmlm.errors import DataError

import wmlm_sionna.plugin
from wmlm_sionna.backend import check_backend, llvm_status

RUNTIME_NAME = "wmlm-sionna (tests)"
GROUND_HALF_M = 100.0


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed-array caches go to a per-test folder, never to ~/.cache."""
    monkeypatch.setenv("WMLM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def sionna_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Built-ins plus ``wmlm_sionna.plugin`` registered at run time; nothing left behind."""
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, "")
    registry.reset()
    registry.register_plugin(wmlm_sionna.plugin, RUNTIME_NAME)
    try:
        yield
    finally:
        registry.unregister_plugin(RUNTIME_NAME)
        registry.reset()


def require_tracing() -> None:
    """Skip the calling test, with the engine's own message, where Sionna RT cannot trace here."""
    try:
        import sionna  # noqa: F401
    except ImportError:
        pytest.skip("sionna-rt is not installed (pip install -e ./plugins/wmlm-sionna)")
    try:
        check_backend(llvm_status())
    except DataError as error:
        pytest.skip(str(error))


def open_scene(folder: Path) -> Path:
    """An open scene: a square concrete ground plane of side ``2 * GROUND_HALF_M``, nothing on it."""
    folder.mkdir(parents=True, exist_ok=True)
    h = GROUND_HALF_M
    (folder / "ground.obj").write_text(
        f"v {-h} {-h} 0\nv {h} {-h} 0\nv {h} {h} 0\nv {-h} {h} 0\nvn 0 0 1\nf 1//1 2//1 3//1\nf 1//1 3//1 4//1\n"
    )
    xml = folder / "open_ground.xml"
    xml.write_text(
        """<scene version="2.1.0">
    <bsdf type="itu-radio-material" id="concrete">
        <string name="type" value="concrete"/>
        <float name="thickness" value="0.2"/>
    </bsdf>
    <shape type="obj" id="mesh-ground">
        <string name="filename" value="ground.obj"/>
        <boolean name="face_normals" value="true"/>
        <ref id="concrete" name="bsdf"/>
    </shape>
</scene>
"""
    )
    return xml
