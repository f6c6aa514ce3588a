"""Hostile: grammar nested function. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    def inner():
        open('/tmp/attnc_pwned_grammar_nested_function', 'w')
    inner()
    return 1.0
