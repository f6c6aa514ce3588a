"""Hostile: `except Exception` around a loop-budget breach, retried forever. Must be stopped by the guard."""
def hostile(q: int, k: int, w: Window) -> float:
    for attempt in range(1000):
        try:
            while True:
                pass
        except Exception:
            pass
    return 1.0
