def induction(q: int, k: int, w: Window) -> float:
    """Induction head: attend to the token after an earlier occurrence of the current token.

    For "... A B ... A", the second A attends to B, so the model can predict B
    again. The core in-context copying circuit of small LMs.
    """
    return 1.0 if k >= 1 and k < q and w.ids[k - 1] == w.ids[q] else 0.0
