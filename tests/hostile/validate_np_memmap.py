"""Hostile: validate np memmap. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.memmap('/tmp/attnc_pwned_validate_np_memmap', mode='w+', shape=(1,))
    return 1.0
