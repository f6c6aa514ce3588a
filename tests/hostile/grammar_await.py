"""Hostile: grammar await. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    await open('/tmp/attnc_pwned_grammar_await', 'w')
    return 1.0
