"""Hostile: validate exec. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    exec("open('/tmp/attnc_pwned_validate_exec', 'w')")
    return 1.0
