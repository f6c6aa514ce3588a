"""Hostile: validate getattr computed. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    name = '_' + '_class__'
    getattr(w, name)
    return 1.0
