"""wmlm's version, in one place: ``wmlm.__version__`` re-exports it and pyproject.toml reads it from here.

A module of its own so that lower modules (the data cache's keys, run markers, ``wmlm plugins``) can read
it without importing the package's ``__init__``.
"""

__version__ = "0.1.0"
