"""Hostile: validate globals attr. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    g = hostile.__globals__
    g['__builtins__']['open']('/tmp/attnc_pwned_validate_globals_attr', 'w')
    return 1.0
