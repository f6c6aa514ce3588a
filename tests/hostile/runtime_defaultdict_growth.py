"""Hostile: a defaultdict grown by reads. Must be stopped by the allocation bound."""
from collections import defaultdict


def hostile(q: int, k: int, w: Window) -> float:
    d = defaultdict(int)
    total = 0
    for i in range(999000):
        total += d[i]
    return float(total)
