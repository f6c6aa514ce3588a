"""Hostile: catastrophic backtracking, `(a|aa)+$` on 'aaaa...!'. Must be stopped by the regex time bound."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    text = "a" * 60 + "!"
    if re.match(r"(a|aa)+$", text):
        return 1.0
    return 0.0
