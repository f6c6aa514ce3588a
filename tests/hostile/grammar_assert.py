"""Hostile: grammar assert. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    assert open('/tmp/attnc_pwned_grammar_assert', 'w')
    return 1.0
