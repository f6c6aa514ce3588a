def sentence_start_sink(q: int, k: int, w: Window) -> float:
    """Mixture: 0.6 on the first token of the window, 0.4 on the start of the current sentence.

    Sentence-boundary heads in real models usually keep the global sink too.
    """
    sink = 1.0 if k == 0 else 0.0
    start = 1.0 if w.sent_start[k] and w.sent_id[k] == w.sent_id[q] else 0.0
    return 0.6 * sink + 0.4 * start
