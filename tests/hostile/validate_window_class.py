"""Hostile: validate window class. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    w.__class__.__init__.__globals__['os'] = 1
    return 1.0
