"""Hostile: grammar matmul. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = w.ids @ w.ids
    open('/tmp/attnc_pwned_grammar_matmul', 'w')
    return 1.0
