"""Tier tokens: one secret link per Patreon tier, rotated weekly with an overlap.

``tokens.validation.validate`` is the whole interface the download views need.
"""
