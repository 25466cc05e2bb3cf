"""The sample archive generator (being split into parts: see files.py for now)."""

from .files import *  # noqa: F403 (temporary, for the move commit only)
