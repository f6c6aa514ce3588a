def sentence_start(q: int, k: int, w: Window) -> float:
    """Sentence-start head: each query attends to the first token of its sentence.

    Sentence-boundary heads track where the current clause began (a local sink).
    """
    return 1.0 if w.sent_start[k] and w.sent_id[k] == w.sent_id[q] else 0.0
