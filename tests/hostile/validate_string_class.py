"""Hostile: validate string class. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = ''.__class__.__base__.__subclasses__()
    return 1.0
