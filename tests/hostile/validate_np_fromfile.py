"""Hostile: validate np fromfile. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.fromfile('/etc/passwd')
    return 1.0
