"""Hostile: validate call subscript. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    fs = [len]
    fs[0]('/tmp/attnc_pwned_validate_call_subscript')
    return 1.0
