def previous_word_start(q: int, k: int, w: Window) -> float:
    """Previous-word head: attend to the first token of the previous word.

    The word-level analogue of the previous-token head: word bigram context that
    skips over sub-word pieces.
    """
    return 1.0 if w.word_start[k] and w.word_id[k] == w.word_id[q] - 1 else 0.0
