"""Hostile: validate np dict. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.__dict__['save']('/tmp/attnc_pwned_validate_np_dict', np.zeros(1))
    return 1.0
