"""Hostile: Counter.elements() of a huge count. Must be stopped by the allocation bound."""
from collections import Counter


def hostile(q: int, k: int, w: Window) -> float:
    c = Counter({"a": 1000000000})
    return float(len(list(c.elements())))
