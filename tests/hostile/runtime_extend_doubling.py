"""Hostile: list.extend doubling. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    lst = [0]
    for i in range(64):
        lst.extend(lst)
    return 1.0
