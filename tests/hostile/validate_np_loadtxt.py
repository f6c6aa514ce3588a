"""Hostile: validate np loadtxt. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.loadtxt('/etc/passwd')
    return 1.0
