"""Hostile: grammar unicode lookalike. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    ｏｐｅｎ('/tmp/attnc_pwned_grammar_unicode_lookalike', 'w')
    return 1.0
