"""Hostile: grammar del. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    del w
    open('/tmp/attnc_pwned_grammar_del', 'w')
    return 1.0
