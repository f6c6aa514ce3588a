"""Hostile: validate print open. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    print(open('/tmp/attnc_pwned_validate_print_open', 'w'))
    return 1.0
