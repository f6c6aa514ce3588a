"""Hostile: validate format map. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = '{x.__class__}'.format_map({'x': w})
    return 1.0
