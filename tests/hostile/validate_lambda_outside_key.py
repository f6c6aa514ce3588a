"""Hostile: a lambda stored and called later. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    f = lambda path: open(path, "w")
    f("/tmp/attnc_pwned_validate_lambda_outside_key")
    return 1.0
