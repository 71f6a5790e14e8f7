"""The errors wmlm raises for things a user can fix, each with the exit code the command line returns.

Library code raises these with a message that names the file, row, column or config key and says what was
expected; ``wmlm.cli.main`` is the one place that turns them into a short message and an exit code. Every
class also derives from ``ValueError`` so callers that caught ``ValueError`` before keep working.
"""

from __future__ import annotations

EXIT_DATA = 1  # bad data, checkpoint or output folder
EXIT_USAGE = 2  # bad command line or configuration (argparse's convention)


class WmlmError(ValueError):
    """Something the user can fix; ``str(error)`` is the whole message shown at the terminal."""

    exit_code: int = EXIT_DATA


class DataError(WmlmError):
    """Bad or missing input data; the message names the file, row and column involved."""


class ConfigError(WmlmError):
    """A configuration value that cannot work; the message names the key (``model.anchor``, ...)."""

    exit_code = EXIT_USAGE


class CheckpointError(WmlmError):
    """A checkpoint that cannot be read safely or does not fit; the message names the file."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint names code (a class path, a remote URL) that wmlm refuses to run without being told to."""


class OutputError(WmlmError):
    """An output path wmlm refuses to write to (it holds data wmlm did not write, or cannot be created)."""
