def previous_sentence(q: int, k: int, w: Window) -> float:
    """Previous-sentence head: uniform attention over the sentence before the current one.

    Cross-sentence heads carry the topic of the last sentence into the next one;
    tokens of the first sentence fall back to themselves.
    """
    return 1.0 if w.sent_id[k] == w.sent_id[q] - 1 else 0.0
