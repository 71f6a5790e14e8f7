"""``wmlm plugins``: which plugins are loaded, what they register, and which failed."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from wmlm.registry import load_plugins


def plugins_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="wmlm plugins", description="List wmlm plugins and what they register."
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    records = load_plugins().records
    if args.json:
        print(json.dumps([asdict(r) for r in records], indent=2))
        return 0
    table = Table(title="wmlm plugins")
    for column in ("plugin", "distribution", "version", "modalities", "heads", "readers", "status"):
        table.add_column(column, no_wrap=column == "plugin")  # the plugin's name whole, the lists wrap
    for r in records:
        status = r.status if not r.error else f"{r.status}: {r.error}"
        table.add_row(
            r.name,
            r.distribution,
            r.version,
            ", ".join(r.registered["modality"]),
            ", ".join(r.registered["head"]),
            ", ".join(r.registered["reader"]),
            f"[red]{status}[/red]" if r.status != "ok" else status,
        )
    Console().print(table)
    return 0
