"""Hostile: grammar semicolon import. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    x = 1; import os; os.system('touch /tmp/attnc_pwned_grammar_semicolon_import')
    return 1.0
