"""Quiet, honest terminal output for the command line: Lightning's lines that say nothing to a wmlm user go.

Dropped (``QUIET_PATTERNS``): Lightning's advertising tips; ``max_epochs was not set. Setting it to 1000``
(wrong under wmlm: ``WMLM.setup`` sets the epochs from ``align_epochs + adapt_epochs``); "callbacks ...
will override" when the callbacks are wmlm's own (``configure_callbacks`` always returns them); accelerator
lines that report no accelerator; the stepping-batch estimate; deprecation warnings raised inside
Lightning, jsonargparse and torch about their own internals. Everything else Lightning says is kept, and
``--traceback`` / ``WMLM_DEBUG=1`` keeps everything.
"""

from __future__ import annotations

import logging
import re
import warnings

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
QUIET_PATTERNS = (
    r"^💡 Tip:",
    r"^`max_epochs` was not set",
    r"^(GPU available: False|TPU available: False|HPU available: False)",
    r"^Loading `train_dataloader` to estimate number of stepping batches",
    r"^Seed set to ",
)
OWN_CALLBACKS = {"ModelCheckpoint", "LastCheckpoint", "BeamFigures"}
_OVERRIDE = re.compile(r"will override existing callbacks passed to Trainer: (?P<names>.*)$")


class QuietLightning(logging.Filter):
    """Drops the log records of ``QUIET_PATTERNS`` and override notices about wmlm's own callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.patterns = [re.compile(p) for p in QUIET_PATTERNS]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(p.search(message) for p in self.patterns):
            return False
        override = _OVERRIDE.search(message)
        if override:
            names = {n.strip() for n in override.group("names").split(",")}
            return not names <= OWN_CALLBACKS
        return True


_filter = QuietLightning()


def quiet_lightning() -> None:
    """Install the filter on Lightning's loggers and their handlers (idempotent)."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
        for handler in logger.handlers:
            if _filter not in handler.filters:
                handler.addFilter(_filter)
    for module in (r"lightning\..*", r"torch\..*", r"jsonargparse\..*"):
        warnings.filterwarnings("ignore", message=r"(?s).*deprecated", module=module)
    # LightningCLI calls jsonargparse's dump with an option jsonargparse deprecated (reported from its caller)
    warnings.filterwarnings("ignore", message=r"(?s).*skip_none parameter was deprecated")
    # main([...]) from Python (tests, notebooks) is the documented way in; the command line of the hosting
    # process (pytest's, Jupyter's) is not meant for wmlm
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
    # Lightning says this as a warning, not a log record
    warnings.filterwarnings("ignore", message=r"`max_epochs` was not set")
