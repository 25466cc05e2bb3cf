"""Tier tokens: one secret link per Patreon tier, rotated weekly with an overlap.

``validate`` is the whole interface the download views need. Importing this package touches no
model, so it is safe while apps load.
"""

from .validation import Validation, validate

__all__ = ["Validation", "validate"]
