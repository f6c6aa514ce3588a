"""Hostile: `except BaseException` around a loop-budget breach. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    for i in range(1000):
        try:
            while True:
                pass
        except BaseException:
            pass
    return 1.0
