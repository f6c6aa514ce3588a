"""Hostile: validate dunder local. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    __builtins__ = 1
    open('/tmp/attnc_pwned_validate_dunder_local', 'w')
    return 1.0
