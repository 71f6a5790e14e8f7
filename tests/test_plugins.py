"""Plugin system: built-ins, runtime registration, name errors, broken plugins, entry points, CLI listing."""

from __future__ import annotations

import json
import types
import warnings
from pathlib import Path

import pytest
from torch import nn

import wmlm
from wmlm import hookspecs, registry
from wmlm.cli import main  # imported before a test fakes the entry points that fsspec reads at import
from wmlm.data.readers import FieldReader
from wmlm.heads.beam import BeamHead
from wmlm.modalities.base import Modality
from wmlm.modalities.beam import BeamModality
from wmlm.modalities.gps import GpsModality
from wmlm.registry import UnknownNameError

BUILTIN = "wmlm.builtins"  # the one built-in plugin module: every built-in @hookimpl
BUILTIN_PLUGINS = (BUILTIN,)
REPO_ROOT = Path(__file__).resolve().parent.parent


class ToyModality(Modality):
    name = "toy"
    field = "toy_field"
    step_shape = (3,)

    def build_encoder(self, embed_dim: int) -> nn.Module:
        return nn.Linear(3, embed_dim)


class ToyReader(FieldReader):
    name = "toy_field"
    columns = ("toy",)

    def read(self, table):  # noqa: ANN001, ANN201
        raise NotImplementedError


class ToyHead(BeamHead):
    name = "toyhead"


def _toy_plugin() -> types.ModuleType:
    """A plugin module contributing one modality, one head and one reader."""
    module = types.ModuleType("toy_plugin")

    @wmlm.hookimpl
    def wmlm_register_modalities(register):  # noqa: ANN001, ANN202
        register(ToyModality)

    @wmlm.hookimpl
    def wmlm_register_heads(register):  # noqa: ANN001, ANN202
        register(ToyHead)

    @wmlm.hookimpl
    def wmlm_register_readers(register):  # noqa: ANN001, ANN202
        register(ToyReader())

    module.wmlm_register_modalities = wmlm_register_modalities
    module.wmlm_register_heads = wmlm_register_heads
    module.wmlm_register_readers = wmlm_register_readers
    return module


def _record(name: str) -> registry.PluginRecord:
    records = {r.name: r for r in registry.load_plugins().records}
    assert name in records, f"no record for {name!r}; records: {sorted(records)}"
    return records[name]


# ---------------------------------------------------------------- built-ins


def test_builtins_present():
    reg = registry.load_plugins()
    assert reg.modalities["beam"] is BeamModality
    assert reg.modalities["gps"] is GpsModality
    assert reg.heads["beam"] is BeamHead
    assert {"beam_power", "beam_label", "position"} <= set(reg.readers)
    assert all(isinstance(r, FieldReader) for r in reg.readers.values())
    assert registry.get_reader("beam_power").name == "beam_power"
    assert registry.get_modality("gps") is GpsModality
    assert registry.get_head("beam") is BeamHead


def test_builtin_records():
    records = {r.name: r for r in registry.load_plugins().records}
    for name in BUILTIN_PLUGINS:
        assert records[name].status == "ok", records[name]
        assert records[name].distribution == "wmlm"
        assert records[name].version == wmlm.__version__
    registered = records[BUILTIN].registered
    assert registered["modality"] == ["beam", "gps", "image"]
    assert registered["head"] == ["beam", "power", "position", "blockage"]
    assert registered["reader"] == [
        "beam_power",
        "beam_label",
        "position",
        "position_raw",
        "position_cal",
        "blockage",
        "image",
    ]


def test_builtin_hookimpls_live_in_one_module():
    """Only ``wmlm.builtins`` implements hooks; the modules it imports from define classes only."""
    import importlib

    import wmlm.builtins

    assert registry.DEFAULT_PLUGINS == (BUILTIN,)
    assert all(hasattr(wmlm.builtins, hook) for hook in registry.HOOK_KINDS)
    for name in (
        "modalities.beam",
        "modalities.gps",
        "modalities.image",
        "heads.beam",
        "heads.power",
        "heads.position",
        "heads.blockage",
    ):
        module = importlib.import_module(f"wmlm.{name}")
        assert not [h for h in registry.HOOK_KINDS if hasattr(module, h)], f"wmlm.{name} implements a hook"
    # wmlm.data.readers may still carry its old hookimpl until it is deleted there; it is no plugin module
    assert "wmlm.data.readers" not in {r.name for r in registry.load_plugins().records}


def test_load_plugins_is_idempotent():
    first = registry.load_plugins()
    assert registry.load_plugins() is first
    registry.get_modality("beam")
    assert registry.load_plugins() is first
    registry.reset()
    again = registry.load_plugins()
    assert again is not first
    assert again.modalities == first.modalities


# ---------------------------------------------------------------- runtime registration


def test_runtime_registration_and_unregistration():
    class Plugin:
        @wmlm.hookimpl
        def wmlm_register_modalities(self, register):  # noqa: ANN001, ANN202
            register(ToyModality)

    before = registry.load_plugins()
    registry.register_plugin(Plugin(), "toy-plugin")
    try:
        assert registry.get_modality("toy") is ToyModality
        assert registry.load_plugins() is not before
        record = _record("toy-plugin")
        assert record.status == "ok"
        assert record.registered["modality"] == ["toy"]
        # built-ins are still there
        assert registry.get_modality("beam") is BeamModality
    finally:
        registry.unregister_plugin("toy-plugin")
    with pytest.raises(UnknownNameError, match="toy"):
        registry.get_modality("toy")
    assert "toy-plugin" not in {r.name for r in registry.load_plugins().records}


def test_runtime_module_plugin_registers_all_kinds():
    registry.register_plugin(_toy_plugin(), "toy-module")
    try:
        assert registry.get_modality("toy") is ToyModality
        assert registry.get_head("toyhead") is ToyHead
        assert isinstance(registry.get_reader("toy_field"), ToyReader)
        assert _record("toy-module").registered == {
            "modality": ["toy"],
            "head": ["toyhead"],
            "reader": ["toy_field"],
        }
    finally:
        registry.unregister_plugin("toy-module")
    with pytest.raises(UnknownNameError):
        registry.get_head("toyhead")
    with pytest.raises(UnknownNameError):
        registry.get_reader("toy_field")


# ---------------------------------------------------------------- unknown names


def test_unknown_modality_lists_available():
    with pytest.raises(UnknownNameError) as info:
        registry.get_modality("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "beam" in message and "gps" in message
    assert "wmlm plugins" in message
    assert isinstance(info.value, KeyError)
    assert not message.startswith('"')  # not KeyError's quoted repr


def test_unknown_head_lists_available():
    with pytest.raises(UnknownNameError) as info:
        registry.get_head("nope")
    assert "'nope'" in str(info.value)
    assert "available: beam" in str(info.value)


def test_unknown_reader_lists_available():
    with pytest.raises(UnknownNameError) as info:
        registry.get_reader("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in ("beam_power", "beam_label", "position"):
        assert name in message


# ---------------------------------------------------------------- duplicates and failing plugins


class DuplicateBeam(Modality):
    name = "beam"
    field = "beam_power"
    step_shape = (64,)

    def build_encoder(self, embed_dim: int) -> nn.Module:
        return nn.Linear(64, embed_dim)


def _duplicate_plugin() -> types.ModuleType:
    module = types.ModuleType("dup_plugin")

    @wmlm.hookimpl
    def wmlm_register_modalities(register):  # noqa: ANN001, ANN202
        register(DuplicateBeam)

    module.wmlm_register_modalities = wmlm_register_modalities
    return module


def test_duplicate_name_is_reported_and_does_not_raise():
    registry.register_plugin(_duplicate_plugin(), "dup-plugin")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reg = registry.load_plugins()
        assert any("already registered" in str(w.message) for w in caught)
        failed = [r for r in reg.records if r.status == "failed"]
        assert len(failed) == 1
        assert "duplicate modality name 'beam'" in failed[0].error
        assert reg.modalities["beam"] in (BeamModality, DuplicateBeam)
    finally:
        registry.unregister_plugin("dup-plugin")


def test_duplicate_name_keeps_the_builtin():
    registry.register_plugin(_duplicate_plugin(), "dup-plugin")
    try:
        with pytest.warns(UserWarning, match="already registered"):
            reg = registry.load_plugins()
        assert reg.modalities["beam"] is BeamModality
        assert _record(BUILTIN).status == "ok"
        record = _record("dup-plugin")
        assert record.status == "failed"
        assert "duplicate" in record.error
        assert record.registered["modality"] == []
    finally:
        registry.unregister_plugin("dup-plugin")


def test_failing_hook_is_recorded_and_others_still_work():
    broken = types.ModuleType("broken_plugin")

    @wmlm.hookimpl
    def wmlm_register_heads(register):  # noqa: ANN001, ANN202
        raise RuntimeError("boom in heads")

    broken.wmlm_register_heads = wmlm_register_heads
    registry.register_plugin(broken, "broken-plugin")
    registry.register_plugin(_toy_plugin(), "toy-module")
    try:
        with pytest.warns(UserWarning, match="boom in heads"):
            reg = registry.load_plugins()
        record = _record("broken-plugin")
        assert record.status == "failed"
        assert "boom in heads" in record.error
        assert "wmlm_register_heads" in record.error
        assert "RuntimeError" in record.error
        assert registry.get_head("beam") is BeamHead
        assert registry.get_head("toyhead") is ToyHead
        assert registry.get_modality("toy") is ToyModality
        assert _record("toy-module").status == "ok"
        for name in BUILTIN_PLUGINS:
            assert _record(name).status == "ok"
        assert reg is registry.load_plugins()
    finally:
        registry.unregister_plugin("broken-plugin")
        registry.unregister_plugin("toy-module")


def test_registering_a_nameless_item_fails_that_plugin_only():
    bad = types.ModuleType("nameless_plugin")

    @wmlm.hookimpl
    def wmlm_register_readers(register):  # noqa: ANN001, ANN202
        register(object())

    bad.wmlm_register_readers = wmlm_register_readers
    registry.register_plugin(bad, "nameless")
    try:
        with pytest.warns(UserWarning):
            registry.load_plugins()
        record = _record("nameless")
        assert record.status == "failed"
        assert "name" in record.error
        assert registry.get_reader("beam_power").name == "beam_power"
    finally:
        registry.unregister_plugin("nameless")


# ---------------------------------------------------------------- entry points


class FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version


class FakeEntryPoint:
    def __init__(self, name: str, dist: FakeDist | None, load) -> None:  # noqa: ANN001
        self.name, self.dist, self._load = name, dist, load
        self.group = registry.ENTRY_POINT_GROUP
        self.calls = 0

    def load(self):  # noqa: ANN201
        self.calls += 1
        return self._load()


GROUPS_ASKED: list[str | None] = []


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeEntryPoint]:
    def fail():  # noqa: ANN202
        raise ImportError("No module named 'wmlm_broken_dep'")

    points = {
        "good": FakeEntryPoint("good", FakeDist("wmlm-good", "1.2.3"), _toy_plugin),
        "broken": FakeEntryPoint("broken", FakeDist("wmlm-broken", "0.0.1"), fail),
    }

    def entry_points(**kwargs):  # noqa: ANN003, ANN202
        GROUPS_ASKED.append(kwargs.get("group"))
        return [p for p in points.values() if kwargs.get("group") in (None, p.group)]

    monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
    monkeypatch.delenv(registry.ENV_LOAD_PLUGINS, raising=False)
    registry.reset()
    GROUPS_ASKED.clear()
    return points


def test_entry_points_good_and_broken(fake_entry_points):
    with pytest.warns(UserWarning, match="failed to load"):
        reg = registry.load_plugins()
    assert GROUPS_ASKED == ["wmlm"]
    assert reg.modalities["toy"] is ToyModality
    assert reg.heads["toyhead"] is ToyHead
    assert "toy_field" in reg.readers
    good = _record("good")
    assert good.status == "ok"
    assert (good.distribution, good.version) == ("wmlm-good", "1.2.3")
    assert good.registered["modality"] == ["toy"]
    broken = _record("broken")
    assert broken.status == "failed"
    assert "ImportError" in broken.error and "wmlm_broken_dep" in broken.error
    assert (broken.distribution, broken.version) == ("wmlm-broken", "0.0.1")
    assert broken.registered == {"modality": [], "head": [], "reader": []}
    assert fake_entry_points["good"].calls == 1
    assert fake_entry_points["broken"].calls == 1
    # built-ins unaffected
    assert registry.get_modality("beam") is BeamModality
    for name in BUILTIN_PLUGINS:
        assert _record(name).status == "ok"


@pytest.mark.parametrize("allow", ["good", "wmlm-good", " good , "])
def test_env_allows_only_named_entry_points(fake_entry_points, monkeypatch, allow):
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, allow)
    registry.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the broken plugin is never loaded, so nothing warns
        reg = registry.load_plugins()
    assert fake_entry_points["broken"].calls == 0
    assert fake_entry_points["good"].calls == 1
    assert reg.modalities["toy"] is ToyModality
    assert "broken" not in {r.name for r in reg.records}
    assert _record("good").status == "ok"


def test_env_naming_no_installed_plugin_warns_with_what_is_installed(fake_entry_points, monkeypatch):
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, "lidar;csi")  # semicolons: one name that matches nothing
    registry.reset()
    with pytest.warns(
        UserWarning, match=r"names lidar;csi, which no installed .*installed: good \(wmlm-good\)"
    ):
        registry.load_plugins()
    assert fake_entry_points["good"].calls == 0


def test_plugin_calling_sys_exit_at_import_is_a_failed_plugin(
    fake_entry_points, capsys: pytest.CaptureFixture
) -> None:
    def leave():  # noqa: ANN202
        raise SystemExit(0)

    fake_entry_points["quitter"] = FakeEntryPoint("quitter", FakeDist("wmlm-quitter", "0.1"), leave)
    with pytest.warns(UserWarning, match="quitter"):
        assert main(["plugins", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["quitter"]["status"] == "failed" and "SystemExit" in records["quitter"]["error"]
    assert registry.get_modality("toy") is ToyModality  # the others still load


def test_env_empty_loads_builtins_only(fake_entry_points, monkeypatch):
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, "")
    registry.reset()
    reg = registry.load_plugins()
    assert fake_entry_points["good"].calls == 0
    assert fake_entry_points["broken"].calls == 0
    assert "toy" not in reg.modalities
    assert {r.name for r in reg.records} == set(BUILTIN_PLUGINS)
    assert registry.get_modality("beam") is BeamModality
    assert registry.get_head("beam") is BeamHead
    assert registry.get_reader("position").name == "position"


def test_entry_point_without_distribution(monkeypatch):
    point = FakeEntryPoint("orphan", None, _toy_plugin)
    monkeypatch.setattr(registry.metadata, "entry_points", lambda **kwargs: [point])
    monkeypatch.delenv(registry.ENV_LOAD_PLUGINS, raising=False)
    registry.reset()
    assert registry.get_modality("toy") is ToyModality
    assert _record("orphan").distribution == "?"


# ---------------------------------------------------------------- `wmlm plugins`


def test_cli_plugins_json(capsys):
    from wmlm.cli import main

    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert isinstance(listing, list)
    by_name = {entry["name"]: entry for entry in listing}
    assert set(BUILTIN_PLUGINS) <= set(by_name)
    for entry in listing:
        assert set(entry["registered"]) == {"modality", "head", "reader"}
        assert entry["status"] in ("ok", "failed")
    assert "gps" in by_name[BUILTIN]["registered"]["modality"]
    assert "beam" in by_name[BUILTIN]["registered"]["head"]
    assert "beam_power" in by_name[BUILTIN]["registered"]["reader"]


def test_cli_plugins_table(capsys, monkeypatch):
    from wmlm.cli import main

    monkeypatch.setenv("COLUMNS", "300")  # rich would truncate cells to the terminal width
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert BUILTIN in out
    assert "beam_power" in out


# ---------------------------------------------------------------- documentation


def test_every_hook_is_documented_in_readme():
    hooks = sorted(name for name in vars(hookspecs) if name.startswith("wmlm_"))
    # data engines are not part of a plugin's modality/head/reader record, but are a hook all the same
    assert set(hooks) == set(registry.HOOK_KINDS) | {registry.ENGINE_HOOK}
    readme = REPO_ROOT / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} does not exist yet")
    text = readme.read_text()
    missing = [hook for hook in hooks if hook not in text]
    assert not missing, f"README.md does not mention the hooks {missing}"
