"""Hostile: validate np function globals. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    np.zeros.__globals__['os'].system('touch /tmp/attnc_pwned_validate_np_function_globals')
    return 1.0
