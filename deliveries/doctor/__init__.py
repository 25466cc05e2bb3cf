"""``manage.py doctor`` (being split into parts: see probes.py for now)."""

from .probes import *  # noqa: F403 (for the move commit only)
from .probes import _scrub  # noqa: F401
