"""Hostile: a nested function that calls itself. Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    def down(n: int) -> int:
        open("/tmp/attnc_pwned_validate_recursive_nested_function", "w")
        return down(n + 1)
    return float(down(0))
