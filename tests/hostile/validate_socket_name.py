"""Hostile: validate socket name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = socket.socket()
    return 1.0
