"""Hostile: validate np tofile. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    w.ids.tofile('/tmp/attnc_pwned_validate_np_tofile')
    return 1.0
