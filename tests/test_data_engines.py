"""Data engines: the ``wmlm_register_data_engines`` hook, the registry lookup and ``wmlm data synth --engine``."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

import wmlm
from wmlm import registry
from wmlm.cli import main
from wmlm.data.sim.cli import split_engine
from wmlm.errors import ConfigError
from wmlm.registry import UnknownNameError

PLUGIN_NAME = "fake-engine (tests)"


class FakeEngine:
    """Records the arguments it was given and writes one file, so dispatch can be checked end to end."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def synth(self, argv: list[str]) -> int:
        self.calls.append(list(argv))
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "fake.txt").write_text("fake engine\n")
        return 0


def _plugin(engine: object) -> types.ModuleType:
    module = types.ModuleType("fake_engine_plugin")

    @wmlm.hookimpl
    def wmlm_register_data_engines(register):  # noqa: ANN001, ANN202
        register(engine)

    module.wmlm_register_data_engines = wmlm_register_data_engines
    return module


def test_split_engine() -> None:
    assert split_engine(["--out", "x"]) == ("builtin", ["--out", "x"])
    assert split_engine(["--engine", "fake", "--out", "x"]) == ("fake", ["--out", "x"])
    assert split_engine(["--out", "x", "--engine=fake", "--seed", "1"]) == (
        "fake",
        ["--out", "x", "--seed", "1"],
    )
    with pytest.raises(ConfigError, match="--engine: expected a data engine name"):
        split_engine(["--engine"])
    with pytest.raises(ConfigError, match="--engine: expected a data engine name"):
        split_engine(["--engine", "--out", "x"])


def test_registered_engine_is_found_and_listed() -> None:
    engine = FakeEngine()
    registry.register_plugin(_plugin(engine), PLUGIN_NAME)
    try:
        assert registry.get_data_engine("fake") is engine
        assert registry.data_engine_names() == ["builtin", "fake"]
        record = next(r for r in registry.load_plugins().records if r.name == PLUGIN_NAME)
        assert record.status == "ok" and record.data_engines == ["fake"]
        assert record.registered == {"modality": [], "head": [], "reader": []}
    finally:
        registry.unregister_plugin(PLUGIN_NAME)
    with pytest.raises(UnknownNameError, match="unknown data engine 'fake'; available: builtin"):
        registry.get_data_engine("fake")


def test_engine_without_synth_or_taking_builtin_marks_the_plugin_failed() -> None:
    bad = types.SimpleNamespace(name="nosynth")
    taken = types.SimpleNamespace(name="builtin", synth=lambda argv: 0)
    registry.register_plugin(_plugin(bad), "bad-engine")
    registry.register_plugin(_plugin(taken), "taken-engine")
    try:
        with pytest.warns(UserWarning):
            records = {r.name: r for r in registry.load_plugins().records}
        assert records["bad-engine"].status == "failed" and "synth" in records["bad-engine"].error
        assert (
            records["taken-engine"].status == "failed"
            and "duplicate data engine" in records["taken-engine"].error
        )
        assert registry.data_engine_names() == ["builtin"]
    finally:
        registry.unregister_plugin("bad-engine")
        registry.unregister_plugin("taken-engine")


def test_synth_dispatches_the_remaining_arguments(tmp_path: Path) -> None:
    engine = FakeEngine()
    registry.register_plugin(_plugin(engine), PLUGIN_NAME)
    try:
        out = tmp_path / "out"
        code = main(["data", "synth", "--engine", "fake", "--out", str(out), "--scene", "x", "--seed", "3"])
        assert code == 0
        assert engine.calls == [["--out", str(out), "--scene", "x", "--seed", "3"]]
        assert (out / "fake.txt").read_text() == "fake engine\n"
    finally:
        registry.unregister_plugin(PLUGIN_NAME)


def test_unknown_engine_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "synth", "--engine", "nope", "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--engine: unknown data engine 'nope'; available: builtin" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_builtin_engine_is_the_default_simulator(tmp_path: Path) -> None:
    """``--engine builtin`` writes the same bytes as no ``--engine`` at all."""
    args = ["--scenarios", "suburban", "--sequences", "1", "--seed", "2", "--sensors", "none"]
    assert main(["data", "synth", "--out", str(tmp_path / "a"), *args]) == 0
    assert main(["data", "synth", "--engine", "builtin", "--out", str(tmp_path / "b"), *args]) == 0
    a, b = tmp_path / "a" / "suburban", tmp_path / "b" / "suburban"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
