"""The command line's one error boundary: a user's mistake becomes a short message and an exit code.

``wmlm.cli.main`` runs every verb inside ``error_boundary``. An error the user can fix (``WmlmError`` and its
kin, a missing or unreadable file, an unknown plugin name, a configuration jsonargparse refused) prints
``wmlm: error: <message>`` on stderr, at most ``MAX_LINES`` lines, and returns 1 (data, checkpoint, output)
or 2 (command line, configuration). Anything else is a defect in wmlm or a plugin: it prints one line that
says so, and the traceback. ``--traceback`` or ``WMLM_DEBUG=1`` shows the full traceback for every error.
"""

from __future__ import annotations

import os
import sys
import traceback
from argparse import ArgumentError
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from wmlm.errors import EXIT_DATA, EXIT_USAGE, WmlmError
from wmlm.model.trust import ENV_ALLOW_REMOTE, ENV_TRUST_CLASSES
from wmlm.registry import UnknownNameError

TRACEBACK_FLAG = "--traceback"
ENV_DEBUG = "WMLM_DEBUG"
TRUST_FLAGS = {
    "--allow_remote_checkpoints": ENV_ALLOW_REMOTE,
    "--trust_checkpoint_classes": ENV_TRUST_CLASSES,
}
MAX_LINES = 12
MAX_CHARS = 2000
# lines jsonargparse adds to a refused value that repeat what the first line said
_PARSER_NOISE = ("Expected a <class 'NoneType'>", "Given value type:", "Given value:", "Errors:")


def debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """Whether the full traceback was asked for, and ``argv`` without ``--traceback``."""
    env = os.environ.get(ENV_DEBUG, "").strip().lower() not in ("", "0", "false", "no")
    return env or TRACEBACK_FLAG in argv, [a for a in argv if a != TRACEBACK_FLAG]


@contextmanager
def trust_flags(argv: list[str]) -> Iterator[list[str]]:
    """``argv`` without the trust opt-ins, which set the environment variables the loaders read while the
    command runs (and are restored after, so one in-process call never leaks into the next).

    ``--allow_remote_checkpoints``: read ``--ckpt_path`` / ``init_from`` URLs (still ``weights_only``).
    ``--trust_checkpoint_classes``: let a checkpoint name classes wmlm does not vouch for.
    """
    saved = {variable: os.environ.get(variable) for variable in TRUST_FLAGS.values()}
    for flag, variable in TRUST_FLAGS.items():
        if flag in argv:
            os.environ[variable] = "1"
    try:
        yield [a for a in argv if a not in TRUST_FLAGS]
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from, outermost first (jsonargparse wraps what ``__init__`` raised)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # an error raised ``from None`` stands alone: what it replaced is not its cause
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _user_error(error: BaseException) -> tuple[BaseException, int] | None:
    """The innermost error of the chain a user can act on, with its exit code; None for a defect."""
    for cause in reversed(list(_chain(error))):
        if isinstance(cause, WmlmError):
            return cause, cause.exit_code
        if isinstance(cause, UnknownNameError):
            return cause, EXIT_USAGE
    if isinstance(error, ArgumentError) or type(error).__module__.startswith("jsonargparse"):
        return error, EXIT_USAGE
    for cause in _chain(error):
        if isinstance(cause, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
            return cause, EXIT_DATA
    return None


def short_message(error: BaseException) -> str:
    """The error's message without jsonargparse's repetitions, cut to ``MAX_LINES`` lines of ``MAX_CHARS``."""
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.strerror or type(error).__name__}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.strip().lstrip("- ").startswith(_PARSER_NOISE)]
    cut = len(lines) > MAX_LINES or sum(map(len, lines)) > MAX_CHARS
    lines = [line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 3] + "..." for line in lines[:MAX_LINES]]
    if cut:
        lines.append(f"(message shortened; {TRACEBACK_FLAG} shows all of it)")
    return "\n".join(lines) or type(error).__name__


def error_boundary(verb: Callable[[], int], debug: bool, stderr: TextIO | None = None) -> int:
    """Run ``verb`` and return its exit code; errors become a message on ``stderr`` and 1 or 2."""
    stream = stderr or sys.stderr
    try:
        return verb()
    except SystemExit as done:  # argparse and jsonargparse exit after printing their own message
        code = done.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(f"wmlm: error: {code}", file=stream)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("wmlm: interrupted", file=stream)
        return 130
    except Exception as error:
        found = _user_error(error)
        if debug:
            traceback.print_exception(error, file=stream)
        if found is None:
            if not debug:
                traceback.print_exception(error, file=stream)
            print(
                f"wmlm: internal error ({type(error).__name__}); this is a defect in wmlm or a plugin, "
                "please report it with the traceback above",
                file=stream,
            )
            return EXIT_DATA
        cause, code = found
        print(f"wmlm: error: {short_message(cause)}", file=stream)
        if not debug:
            print(f"(run again with {TRACEBACK_FLAG} or {ENV_DEBUG}=1 for the traceback)", file=stream)
        return code
