def word_start(q: int, k: int, w: Window) -> float:
    """Word-start head: each token attends to the first token of its own word.

    Multi-token words ("Ġunbel", "iev", "able") gather on their first piece, which
    lets later pieces know which word they belong to (detokenization heads).
    """
    return 1.0 if w.word_start[k] and w.word_id[k] == w.word_id[q] else 0.0
