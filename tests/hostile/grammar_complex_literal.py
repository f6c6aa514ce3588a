"""Hostile: grammar complex literal. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 1j ** 2
    open('/tmp/attnc_pwned_grammar_complex_literal', 'w')
    return 1.0
