"""Hostile: a closure's __globals__ to reach builtins. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    def inner() -> int:
        return 1
    g = inner.__globals__
    g["__builtins__"]["open"]("/tmp/attnc_pwned_validate_closure_globals", "w")
    return 1.0
