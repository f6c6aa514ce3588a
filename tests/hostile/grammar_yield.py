"""Hostile: grammar yield. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    yield open('/tmp/attnc_pwned_grammar_yield', 'w')
