"""Hostile: re.sub with an empty pattern and a long replacement. Must be stopped by the allocation bound."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    s = "a" * 9000
    t = re.sub(r"", "b" * 9000, s)
    return float(len(t))
