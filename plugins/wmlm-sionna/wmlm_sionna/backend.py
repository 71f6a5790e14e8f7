"""Loading Sionna RT: drjit's LLVM back end needs an LLVM shared library, checked before Sionna is imported.

Sionna RT picks a Mitsuba variant when it is imported; on a machine without a GPU that is an LLVM variant,
and drjit then needs ``libLLVM`` at run time. Without one, ``import sionna.rt`` fails deep inside Mitsuba;
with an old one (libLLVM 15 here) the first ray-tracing kernel aborts the whole process ("LLVM ERROR:
Cannot select ... fmaximum"). ``load_sionna`` checks first and raises one ``DataError`` saying what to
install instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

from wmlm.errors import DataError

# libLLVM 15 loads but aborts on Sionna RT's kernels and 14 does not initialise with drjit 1.5; 19 works.
# 16-18 are untested: allowed, since drjit itself supports them.
MIN_LLVM_VERSION = (16, 0, 0)
INSTALL_HINT = (
    "install an LLVM shared library, version 16 or newer (Debian/Ubuntu: apt-get install -y libllvm19), "
    "or set DRJIT_LIBLLVM_PATH to the path of one (e.g. /usr/lib/x86_64-linux-gnu/libLLVM-19.so)"
)


@dataclass(frozen=True)
class LlvmStatus:
    """What drjit found: whether its LLVM back end is usable, the library version, and a GPU back end."""

    llvm: bool
    version: tuple[int, int, int] | None
    cuda: bool


def llvm_status() -> LlvmStatus:
    """Ask drjit which back ends it can use (importing drjit loads libLLVM if it can find one)."""
    try:
        import drjit
    except ImportError as error:  # sionna-rt brings drjit: the plugin's dependencies are missing
        raise DataError(f"the sionna data engine needs sionna-rt: pip install sionna-rt ({error})") from None
    llvm = bool(drjit.has_backend(drjit.JitBackend.LLVM))
    cuda = bool(drjit.has_backend(drjit.JitBackend.CUDA))
    version = tuple(int(v) for v in drjit.detail.llvm_version()) if llvm else None
    return LlvmStatus(llvm, version, cuda)  # type: ignore[arg-type]


def check_backend(status: LlvmStatus) -> None:
    """Raise ``DataError`` naming the missing or too old LLVM library; return when Sionna RT can trace."""
    if status.cuda:
        return  # Sionna RT uses the CUDA variant on a GPU machine and needs no libLLVM
    where = os.environ.get("DRJIT_LIBLLVM_PATH")
    searched = (
        f"DRJIT_LIBLLVM_PATH={where}" if where else "the system library path (DRJIT_LIBLLVM_PATH unset)"
    )
    if not status.llvm or status.version is None:
        raise DataError(
            f"the sionna data engine needs the LLVM shared library libLLVM for drjit's CPU back end, and none "
            f"could be loaded from {searched}: {INSTALL_HINT}"
        )
    if status.version < MIN_LLVM_VERSION:
        found = ".".join(map(str, status.version))
        raise DataError(
            f"the sionna data engine found libLLVM {found} ({searched}), which is too old for Sionna RT's "
            f"ray-tracing kernels (they abort the process): {INSTALL_HINT}"
        )


def load_sionna() -> ModuleType:
    """``sionna.rt``, after ``check_backend`` passed; ``DataError`` with the install hint otherwise."""
    check_backend(llvm_status())
    try:
        import sionna.rt as rt
    except ImportError as error:
        raise DataError(
            f"the sionna data engine could not import sionna.rt ({error}): {INSTALL_HINT}"
        ) from None
    return rt
