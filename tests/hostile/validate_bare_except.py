"""Hostile: a bare except (would name KeyboardInterrupt and guard stops). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    while True:
        try:
            while True:
                pass
        except:
            pass
    return 1.0
