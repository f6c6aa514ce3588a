"""Hostile: validate future import. Must never run."""
from __future__ import barry_as_FLUFL


def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
