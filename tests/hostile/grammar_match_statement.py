"""Hostile: grammar match statement. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    match w:
        case _:
            open('/tmp/attnc_pwned_grammar_match_statement', 'w')
    return 1.0
