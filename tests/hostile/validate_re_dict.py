"""Hostile: re.__dict__ to reach the real module. Must never run."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    d = re.__dict__
    d["sre_compile"]
    return 1.0
