def word_start_decay(q: int, k: int, w: Window) -> float:
    """Recent word starts: attend to the first token of recent words with weight
    0.6 ** (words back), including the current word.

    A word-level recency head: it reads the last few words, not their sub-word pieces.
    """
    back = max(w.word_id[q] - w.word_id[k], 0)
    return 0.6 ** back if k <= q and w.word_start[k] else 0.0
