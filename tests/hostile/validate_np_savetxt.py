"""Hostile: validate np savetxt. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.savetxt('/tmp/attnc_pwned_validate_np_savetxt', np.zeros(1))
    return 1.0
