"""Hostile: nested function calling open. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    def inner():
        open('/tmp/attnc_pwned_validate_nested_function_open', 'w')
    inner()
    return 1.0
