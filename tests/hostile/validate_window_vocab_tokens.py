"""Hostile: validate window vocab tokens. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    t = w.vocab.tokens
    return 1.0
