"""Hostile: a function's code object and frames. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    def inner() -> int:
        return 1
    c = inner.func_code
    f = inner.gi_frame
    return 1.0
