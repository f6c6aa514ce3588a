def sink_content_words(q: int, k: int, w: Window) -> float:
    """Mixture: the first token, earlier content words (alphabetic, 4+ letters)
    and the query itself; the sink weighs as much as four content words.

    Middle-layer "gather the meaningful words" heads that keep an attention sink.
    """
    sink = 1.0 if k == 0 else 0.0
    word = w.tok[k].lstrip("Ġ▁")
    content = word.isalpha() and len(word) >= 4
    return 0.4 * sink + (0.1 if k <= q and content else 0.0) + (0.1 if k == q else 0.0)
