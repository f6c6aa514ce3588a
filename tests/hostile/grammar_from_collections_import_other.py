"""Hostile: importing other collections members. Must never run."""
from collections import OrderedDict, namedtuple


def hostile(q: int, k: int, w: Window) -> float:
    open("/tmp/attnc_pwned_grammar_from_collections_import_other", "w")
    return 1.0
