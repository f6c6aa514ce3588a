"""Hostile: grammar raise. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    raise SystemExit(open('/tmp/attnc_pwned_grammar_raise', 'w'))
