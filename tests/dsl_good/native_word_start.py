def word_start_of_query(q: int, k: int, w: Window) -> float:
    """Attend to the first token of the query's word."""
    if w.word_id[k] == w.word_id[q] and w.word_start[k]:
        return 1.0
    return 0.0
