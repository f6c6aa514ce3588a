"""Hostile: reading a caught exception's text (could carry internals). Must be refused by the guard."""
def hostile(q: int, k: int, w: Window) -> float:
    try:
        x = [][1]
    except IndexError as e:
        return float(len(str(e)))
    return 1.0
