def capitalized_words(q: int, k: int, w: Window) -> float:
    """Capitalised-word head: uniform attention over earlier capitalised words that
    do not open a sentence (proper names, "I").

    Name-tracking heads that let later tokens find the characters of a story.
    """
    core = w.tok[k].lstrip("Ġ▁")
    name = core.isalpha() and core.istitle() and not w.sent_start[k]
    return 1.0 if k <= q and name else 0.0
