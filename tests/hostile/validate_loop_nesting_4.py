"""Hostile: validate loop nesting 4. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    t = 0
    for a in range(w.n):
        for b in range(w.n):
            for c in range(w.n):
                for d in range(w.n):
                    t += 1
    return 1.0
