"""Hostile: grammar double star kwargs. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    kw = {'file': '/tmp/attnc_pwned_grammar_double_star_kwargs', 'mode': 'w'}
    open(**kw)
    return 1.0
