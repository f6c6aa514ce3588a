"""Hostile: validate tb frame. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    e = w.tb_frame
    return 1.0
