"""Hostile: validate percent format. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = '%s %s' % (w, '/tmp/attnc_pwned_validate_percent_format')
    return 1.0
