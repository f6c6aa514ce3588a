"""Hostile: validate breakpoint. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    breakpoint()
    return 1.0
