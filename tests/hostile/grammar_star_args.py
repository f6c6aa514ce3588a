"""Hostile: grammar star args. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    args = ['/tmp/attnc_pwned_grammar_star_args', 'w']
    open(*args)
    return 1.0
