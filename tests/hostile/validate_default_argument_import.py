"""Hostile: validate default argument import. Must never run."""
def hostile(q: int, k: int, w: Window, m=__import__('os')) -> float:
    m.system('touch MARKER')
    return 1.0
