"""Hostile: validate compile. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    code = compile("open('/tmp/attnc_pwned_validate_compile', 'w')", 'x', 'exec')
    return 1.0
