"""The ``wmlm`` command: extra verbs (``plugins``, ``data``, ``model-info``, ``export``, ``online``), else Lightning's
``fit/validate/test/predict`` (``wmlm.cli_lightning``).

Each verb imports what it needs when it runs: ``wmlm data synth`` needs numpy, not Lightning or torch, and
starts in well under a second instead of about 10 s. ``run`` and ``WMLMCLI`` are still importable from here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from wmlm.cli_boundary import debug_requested, error_boundary, trust_flags
from wmlm.cli_output import quiet_lightning

# verb -> "module:function" taking the verb's arguments and returning the exit code
EXTRA_VERBS: dict[str, str] = {
    "plugins": "wmlm.plugins_cmd:plugins_command",
    "data": "wmlm.cli:data_command",
    "model-info": "wmlm.model_info:model_info_command",
    "export": "wmlm.deploy.export:export_command",
    "online": "wmlm.deploy.site_replay:online_command",
}
# names of ``wmlm.cli_lightning`` this module still offers (``from wmlm.cli import run``)
_LIGHTNING_NAMES = ("WMLMCLI", "run", "evaluate_baselines")


def __getattr__(name: str) -> Any:
    if name in _LIGHTNING_NAMES:
        return getattr(importlib.import_module("wmlm.cli_lightning"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def data_command(argv: list[str]) -> int:
    """``wmlm data synth|pack ...``: data tools outside the Trainer."""
    from wmlm.data.sim.cli import synth_command
    from wmlm.data.store import pack_command

    verbs = {"synth": synth_command, "pack": pack_command}
    if not argv or argv[0] not in verbs:
        print(f"usage: wmlm data {{{','.join(verbs)}}} ...  (e.g. wmlm data synth --help)", file=sys.stderr)
        return 2
    return verbs[argv[0]](argv[1:])


def extra_verb(name: str) -> Callable[[list[str]], int]:
    """The function behind the extra verb ``name``, imported now."""
    module, function = EXTRA_VERBS[name].split(":")
    return getattr(importlib.import_module(module), function)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``wmlm`` and ``python -m wmlm``; tests call ``main([...])``. Returns the exit code.

    Errors a user can fix print one short message and return 1 (data, checkpoint, output) or 2 (command
    line, configuration); ``--traceback`` or ``WMLM_DEBUG=1`` adds the traceback (``wmlm.cli_boundary``).
    """
    debug, argv = debug_requested(list(sys.argv[1:] if args is None else args))
    if not debug:
        quiet_lightning()
    with trust_flags(argv) as argv:
        if args is None:
            sys.argv[1:] = argv  # without wmlm's own flags

        def verb() -> int:
            if argv and argv[0] in EXTRA_VERBS:
                return extra_verb(argv[0])(argv[1:])
            # looked up on this module at call time, so a test may replace ``wmlm.cli.run``;
            # LightningCLI reads sys.argv itself when given None (and warns when given both)
            run = sys.modules[__name__].run
            run(argv if args is not None else None, exit_on_error=debug)
            return 0

        return error_boundary(verb, debug)
