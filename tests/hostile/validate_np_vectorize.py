"""Hostile: validate np vectorize. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    f = np.vectorize(open)
    f(['/tmp/attnc_pwned_validate_np_vectorize'], 'w')
    return 1.0
