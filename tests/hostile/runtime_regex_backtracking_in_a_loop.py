"""Hostile: many slow regex calls, each under a per-call timeout, caught and retried. Must be stopped."""
import re

SLOW = re.compile(r"(a|aa)+$")


def hostile(q: int, k: int, w: Window) -> float:
    hits = 0
    for i in range(100000):
        try:
            if SLOW.match("a" * 40 + "!"):
                hits += 1
        except Exception:
            hits -= 1
    return float(hits)
