def same_word(q: int, k: int, w: Window) -> float:
    """Same-word head: uniform attention over the pieces of the current word so far.

    Detokenization heads that assemble a multi-token word from its pieces.
    """
    return 1.0 if k <= q and w.word_id[k] == w.word_id[q] else 0.0
