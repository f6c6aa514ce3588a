"""Hostile: validate class bases subclasses. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    for c in ().__class__.__bases__[0].__subclasses__():
        if c.__name__ == 'Popen':
            c(['touch', '/tmp/attnc_pwned_validate_class_bases_subclasses'])
    return 1.0
