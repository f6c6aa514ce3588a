"""Hostile: a defaultdict whose factory is a forbidden builtin. Must never run."""
from collections import defaultdict


def hostile(q: int, k: int, w: Window) -> float:
    d = defaultdict(open)
    d["/tmp/attnc_pwned_validate_defaultdict_factory_open"]
    return 1.0
