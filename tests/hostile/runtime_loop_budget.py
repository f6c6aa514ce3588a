"""Hostile: three loops each under the range bound, over the total budget. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    t = 0
    for i in range(9000):
        for j in range(9000):
            for k2 in range(9000):
                t += 1
    return 1.0
