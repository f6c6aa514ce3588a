"""Hostile: validate init globals. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    w.tok.__init__.__globals__
    return 1.0
