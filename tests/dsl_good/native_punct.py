def to_punctuation(q: int, k: int, w: Window) -> float:
    """Attend to the latest punctuation before q, the bracket opener, or the sentence start."""
    weight = 0.0
    if k == w.last_punct[q]:
        weight += 1.0
    if k == w.open_bracket[q]:
        weight += 2.0
    if w.sent_start[k] and w.sent_id[k] == w.sent_id[q]:
        weight += 0.5
    return weight
