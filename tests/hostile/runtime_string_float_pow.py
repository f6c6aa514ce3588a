"""Hostile: a float power that overflows. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 10.0 ** (w.n * 1000)
    return x
