"""Hostile: a key lambda reaching builtins through its closure. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    xs = sorted([3, 1, 2], key=lambda v: (lambda: v).__closure__)
    return 1.0
