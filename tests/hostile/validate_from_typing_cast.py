"""Hostile: validate from typing cast. Must never run."""
from typing import cast


def hostile(q: int, k: int, w: Window) -> float:
    cast(int, 1)
    return 1.0
