"""Hostile: two nested functions calling each other. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    def ping(n: int) -> int:
        return pong(n + 1)

    def pong(n: int) -> int:
        return ping(n + 1)
    return float(ping(0))
