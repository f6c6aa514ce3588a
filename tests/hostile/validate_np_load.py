"""Hostile: validate np load. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.load('/etc/passwd', allow_pickle=True)
    return 1.0
