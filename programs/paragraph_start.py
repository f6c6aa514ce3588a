def paragraph_start(q: int, k: int, w: Window) -> float:
    """Paragraph/line-start head: attend to the first token of the window and to
    every token that follows a newline, favouring the most recent one.

    Small LMs keep track of where the current line or paragraph began; newline
    tokens ("Ċ") act like sentence-level sinks.
    """
    after_newline = k >= 1 and w.tok[k - 1].endswith("Ċ")
    start = k == 0 or after_newline
    return 1.0 + k / w.n if k <= q and start else 0.0
