def previous_word_start(q: int, k: int, w: Window) -> float:
    """The query attends to the start of the previous word, found by walking back with while."""
    p = q - 1
    while p > 0 and not w.word_start[p]:
        p -= 1
    try:
        weight = 1.0 / (q - p)
    except ZeroDivisionError:
        weight = 1.0
    if q == 0:
        return 1.0 if k == 0 else 0.0
    return weight if k == max(p, 0) else 0.0
