"""Hostile: grammar lambda. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    f = lambda: open('/tmp/attnc_pwned_grammar_lambda', 'w')
    f()
    return 1.0
