"""Hostile: validate subprocess name. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    subprocess.call(['touch', '/tmp/attnc_pwned_validate_subprocess_name'])
    return 1.0
