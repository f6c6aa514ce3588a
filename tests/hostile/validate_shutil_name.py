"""Hostile: validate shutil name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    shutil.rmtree('/tmp/whatever')
    return 1.0
