"""Hostile: validate input. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = input('/tmp/attnc_pwned_validate_input')
    return 1.0
