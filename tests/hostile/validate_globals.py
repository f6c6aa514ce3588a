"""Hostile: validate globals. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    globals()['__builtins__']['open']('/tmp/attnc_pwned_validate_globals', 'w')
    return 1.0
