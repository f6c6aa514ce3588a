"""Hostile: validate sys modules. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    sys.modules['os'].system('touch /tmp/attnc_pwned_validate_sys_modules')
    return 1.0
