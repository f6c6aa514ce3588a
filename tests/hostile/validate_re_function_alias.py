"""Hostile: aliasing re.search to call it with a computed pattern. Must never run."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    search = re.search
    if search(w.text * 2, w.text):
        return 1.0
    return 0.0
