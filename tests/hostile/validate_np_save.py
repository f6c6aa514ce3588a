"""Hostile: validate np save. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.save('/tmp/attnc_pwned_validate_np_save', np.zeros(3))
    return 1.0
