"""Hostile: validate eval. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    return eval("open('/tmp/attnc_pwned_validate_eval', 'w') and 1.0")
