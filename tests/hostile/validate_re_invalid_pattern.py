"""Hostile: a pattern that does not compile. Must never run."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    if re.search(r"(unclosed", w.text):
        open("/tmp/attnc_pwned_validate_re_invalid_pattern", "w")
    return 1.0
