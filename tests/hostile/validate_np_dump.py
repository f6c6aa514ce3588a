"""Hostile: validate np dump. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    w.ids.dump('/tmp/attnc_pwned_validate_np_dump')
    return 1.0
