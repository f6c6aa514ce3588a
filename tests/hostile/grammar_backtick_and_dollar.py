"""Hostile: grammar backtick and dollar. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = `open`
    return 1.0
