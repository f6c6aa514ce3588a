"""Hostile: slice-assignment growth. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    lst = [0]
    for i in range(64):
        lst[:0] = lst
    return 1.0
