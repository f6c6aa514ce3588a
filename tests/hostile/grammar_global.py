"""Hostile: grammar global. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    global open
    open('/tmp/attnc_pwned_grammar_global', 'w')
    return 1.0
