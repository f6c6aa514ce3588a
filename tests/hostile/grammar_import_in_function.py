"""Hostile: grammar import in function. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    import os
    os.system('touch /tmp/attnc_pwned_grammar_import_in_function')
    return 1.0
