"""Hostile: validate builtins name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    __builtins__['open']('/tmp/attnc_pwned_validate_builtins_name', 'w')
    return 1.0
