"""Hostile: grammar with open. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    with open('/tmp/attnc_pwned_grammar_with_open', 'w') as f:
        f.write('x')
    return 1.0
