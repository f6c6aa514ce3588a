"""Hostile: grammar fstring format spec. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = f'{w.__class__!r:>{10**9}}'
    return 1.0
