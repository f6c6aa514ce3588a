"""Hostile: a match object's pattern and string attributes. Must never run."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    m = re.search(r"a", "abc")
    p = m.re
    s = m.string
    return 1.0
