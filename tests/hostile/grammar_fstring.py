"""Hostile: grammar fstring. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    s = f"{open('/tmp/attnc_pwned_grammar_fstring', 'w')}"
    return 1.0
