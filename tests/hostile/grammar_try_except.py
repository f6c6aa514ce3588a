"""Hostile: grammar try except. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    try:
        1 / 0
    except Exception as e:
        e.__traceback__.tb_frame.f_globals['open']('/tmp/attnc_pwned_grammar_try_except', 'w')
    return 1.0
