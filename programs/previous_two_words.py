def previous_two_words(q: int, k: int, w: Window) -> float:
    """Word-bigram context head: uniform attention over every piece of the two
    words before the current word.

    A word-level local window that ignores how many sub-word tokens each word has.
    """
    back = w.word_id[q] - w.word_id[k]
    return 1.0 if back >= 1 and back <= 2 else 0.0
