"""Hostile: validate dunder import. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    __import__('os').system('touch /tmp/attnc_pwned_validate_dunder_import')
    return 1.0
