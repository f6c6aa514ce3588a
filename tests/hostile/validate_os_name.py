"""Hostile: validate os name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    os.system('touch /tmp/attnc_pwned_validate_os_name')
    return 1.0
