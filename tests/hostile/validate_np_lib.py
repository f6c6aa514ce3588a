"""Hostile: validate np lib. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.lib.format.open_memmap('/tmp/attnc_pwned_validate_np_lib', mode='w+', shape=(1,))
    return 1.0
