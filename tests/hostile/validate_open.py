"""Hostile: validate open. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    open('/tmp/attnc_pwned_validate_open', 'w').write('pwned')
    return 1.0
