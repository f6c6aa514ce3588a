"""Hostile: validate setattr. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    setattr(w, 'n', 0)
    return 1.0
