def same_sentence(q: int, k: int, w: Window) -> float:
    """Same-sentence head: uniform attention over the current sentence so far.

    Sentence-scoped averaging, common in middle layers.
    """
    return 1.0 if k <= q and w.sent_id[k] == w.sent_id[q] else 0.0
