"""Hostile: validate default argument helper. Must never run."""
def helper(x=np.zeros(10**9)):
    return x


def hostile(q: int, k: int, w: Window) -> float:
    return 1.0
