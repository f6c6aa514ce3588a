"""Hostile: re used without `import re`. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    return 1.0 if re.search(r"x", w.text) else 0.0
