"""Hostile: lambda outside key= calling open. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    f = lambda: open('/tmp/attnc_pwned_validate_lambda_open', 'w')
    f()
    return 1.0
