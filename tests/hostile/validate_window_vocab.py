"""Hostile: validate window vocab. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    d = w.vocab.decoder
    return 1.0
