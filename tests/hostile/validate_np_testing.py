"""Hostile: validate np testing. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.testing.assert_equal(1, 1)
    return 1.0
