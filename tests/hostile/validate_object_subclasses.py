"""Hostile: validate object subclasses. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    for c in object.__subclasses__():
        c('/tmp/attnc_pwned_validate_object_subclasses')
    return 1.0
