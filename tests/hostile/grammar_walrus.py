"""Hostile: grammar walrus. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    if (f := open('/tmp/attnc_pwned_grammar_walrus', 'w')):
        return 1.0
    return 0.0
