"""Hostile: repeated scans of a big list. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    big = [0] * 200000
    t = 0
    for i in range(100):
        for j in range(100):
            if -1 in big:
                t += 1
    return 1.0
