"""Hostile: grammar relative import. Must never run."""
from . import evil


def hostile(q: int, k: int, w: Window) -> float:
    evil.run('MARKER')
    return 1.0
