"""Hostile: next() over a generator that never yields. Must be stopped by the loop bound."""
def hostile(q: int, k: int, w: Window) -> float:
    for i in range(100):
        x = next((j for j in range(999999) if j < 0), -1)
    return 1.0
