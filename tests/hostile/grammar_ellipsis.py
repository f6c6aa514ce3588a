"""Hostile: grammar ellipsis. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = ...
    open('/tmp/attnc_pwned_grammar_ellipsis', 'w')
    return 1.0
