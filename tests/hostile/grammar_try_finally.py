"""Hostile: try/finally (a finally block runs even when a guard stops the program). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    try:
        while True:
            pass
    finally:
        open("/tmp/attnc_pwned_grammar_try_finally", "w")
    return 1.0
