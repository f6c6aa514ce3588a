"""Hostile: grammar bytes literal. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = b'touch /tmp/attnc_pwned_grammar_bytes_literal'
    return 1.0
