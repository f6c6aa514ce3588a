"""Hostile: the window has no vocab member (stopped by the attribute guard). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    t = w.vocab.tokens
    return 1.0
