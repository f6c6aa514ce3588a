"""Hostile: grammar hex literal. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 0x7fffffff
    open('/tmp/attnc_pwned_grammar_hex_literal', 'w')
    return 1.0
