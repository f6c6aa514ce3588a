"""Hostile: grammar star params. Must never run."""
def hostile(*args, **kwargs) -> float:
    open('MARKER', 'w')
    return 1.0
