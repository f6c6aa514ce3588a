def last_punctuation(q: int, k: int, w: Window) -> float:
    """Last-punctuation head: attend to the most recent punctuation mark before the query.

    Punctuation acts as a summary/sink of the preceding clause; many middle-layer
    heads in small LMs lock onto the last comma or full stop.
    """
    return 1.0 if k == w.last_punct[q] else 0.0
