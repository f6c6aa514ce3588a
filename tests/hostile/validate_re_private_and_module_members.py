"""Hostile: re's private compile cache and internal modules. Must never run."""
import re


def hostile(q: int, k: int, w: Window) -> float:
    a = re._compile("x", 0)
    b = re.sre_parse
    c = re.template("x")
    return 1.0
