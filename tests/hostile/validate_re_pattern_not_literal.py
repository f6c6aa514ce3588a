"""Hostile: a regex built from the window's text (could be catastrophic). Must never run."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    if re.search(w.text + "(a|aa)+$", w.text):
        return 1.0
    return 0.0
