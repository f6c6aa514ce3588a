"""Hostile: grammar top level class. Must never run."""
class Evil:
    def __del__(self):
        open('MARKER', 'w')


def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
