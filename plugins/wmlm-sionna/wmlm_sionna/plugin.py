"""The wmlm plugin module of ``wmlm-sionna`` (entry point ``sionna``): the ``sionna`` data engine.

Importing it imports neither Sionna nor drjit: those load when the engine runs, after the LLVM check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wmlm import hookimpl

from wmlm_sionna.engine import SionnaEngine


@hookimpl
def wmlm_register_data_engines(register: Callable[[Any], None]) -> None:
    register(SionnaEngine())
