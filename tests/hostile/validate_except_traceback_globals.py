"""Hostile: except reaching frames through the traceback. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    try:
        1 / 0
    except Exception as e:
        e.__traceback__.tb_frame.f_globals['open']('/tmp/attnc_pwned_validate_except_traceback_globals', 'w')
    return 1.0
