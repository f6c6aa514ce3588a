"""Hostile: validate import pickle. Must never run."""
import pickle


def hostile(q: int, k: int, w: Window) -> float:
    pickle.loads('cos\nsystem\n(S"touch MARKER"\ntR.')
    return 1.0
