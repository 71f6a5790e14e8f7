"""The missing or too old LLVM library: one clear message, exit code 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sionna_fixtures import private_cache, sionna_plugin  # noqa: F401  # autouse fixtures
from wmlm.cli import main
from wmlm.errors import DataError

import wmlm_sionna.backend as backend
from wmlm_sionna.backend import LlvmStatus, check_backend


def test_no_llvm_library_names_it_and_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backend, "llvm_status", lambda: LlvmStatus(llvm=False, version=None, cuda=False))
    monkeypatch.delenv("DRJIT_LIBLLVM_PATH", raising=False)
    code = main(["data", "synth", "--engine", "sionna", "--out", str(tmp_path / "out"), "--sequences", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "needs the LLVM shared library libLLVM" in err
    assert "apt-get install -y libllvm19" in err and "DRJIT_LIBLLVM_PATH" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_too_old_llvm_is_refused_before_it_can_abort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", "/usr/lib/libLLVM-15.so")
    with pytest.raises(
        DataError, match=r"found libLLVM 15\.0\.6 \(DRJIT_LIBLLVM_PATH=/usr/lib/libLLVM-15.so\)"
    ):
        check_backend(LlvmStatus(llvm=True, version=(15, 0, 6), cuda=False))


def test_usable_backends_pass() -> None:
    check_backend(LlvmStatus(llvm=True, version=(19, 1, 7), cuda=False))
    check_backend(LlvmStatus(llvm=False, version=None, cuda=True))  # the CUDA variant needs no libLLVM
