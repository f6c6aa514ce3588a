"""Hostile: broken upstream text, an unquoted byte-level token. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    if w.tok[q] == Ġfor:
        open("/tmp/attnc_pwned_grammar_unquoted_token_marker", "w")
    return 1.0
