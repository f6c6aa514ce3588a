"""Hostile: a lambda default capturing a forbidden builtin. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    xs = sorted([1, 2], key=lambda v, o=open: o("/tmp/attnc_pwned_grammar_lambda_default_argument", "w"))
    return 1.0
