"""Hostile: validate recursion mutual. Must never run."""
def ping(x: int) -> int:
    return pong(x + 1)


def pong(x: int) -> int:
    return ping(x + 1)


def hostile(q: int, k: int, w: Window) -> float:
    return float(ping(0))
