"""Hostile: runtime string array growth. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    a = np.array(['ab'] * 100)
    for i in range(40):
        a = a + a
    return 1.0
