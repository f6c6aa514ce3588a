"""Hostile: grammar from import in function. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    from os import system
    system('touch /tmp/attnc_pwned_grammar_from_import_in_function')
    return 1.0
