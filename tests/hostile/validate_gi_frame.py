"""Hostile: validate gi frame. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    g = (x for x in range(3))
    f = g.gi_frame.f_back.f_globals
    f['open']('/tmp/attnc_pwned_validate_gi_frame', 'w')
    return 1.0
