"""The hooks a wmlm plugin can implement.

A plugin is a module with functions marked ``@wmlm.hookimpl``. Each hook receives one ``register``
callback and calls it once per thing it contributes, so a plugin never touches a global registry.
Third-party plugins are found through the ``wmlm`` entry-point group; built-ins use the same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("wmlm")
hookimpl = pluggy.HookimplMarker("wmlm")


@hookspec
def wmlm_register_modalities(register: Callable[[type[Any]], None]) -> None:
    """Register sensor modalities: call ``register(cls)`` with a ``wmlm.Modality`` subclass.

    The class's ``name`` is what configs write in ``model.modalities``.
    """


@hookspec
def wmlm_register_heads(register: Callable[[type[Any]], None]) -> None:
    """Register task heads: call ``register(cls)`` with a ``wmlm.TaskHead`` subclass.

    The class's ``name`` is what configs write in ``model.heads``.
    """


@hookspec
def wmlm_register_readers(register: Callable[[Any], None]) -> None:
    """Register field readers: call ``register(reader)`` with a ``wmlm.FieldReader`` instance.

    A reader turns one sensor column of a scenario CSV into an array with one entry per row;
    modalities and heads name the fields they need.
    """


@hookspec
def wmlm_register_data_engines(register: Callable[[Any], None]) -> None:
    """Register data engines for ``wmlm data synth --engine NAME``: call ``register(engine)`` with an object
    that has a string ``name`` and a method ``synth(argv: list[str]) -> int``.

    ``synth`` receives the command line after ``wmlm data synth`` without ``--engine NAME`` and returns the
    exit code; it should write scenario folders that wmlm's DeepSense reader reads unchanged and raise
    ``wmlm.errors.ConfigError`` / ``DataError`` for what a user can fix. The name ``builtin`` is wmlm's own
    simulator and cannot be registered.
    """
