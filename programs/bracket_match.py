def bracket_match(q: int, k: int, w: Window) -> float:
    """Bracket/quote head: attend to the innermost bracket or quote still open.

    Inside "(...)" or a quotation, tokens attend to the opening mark so the model
    knows it must close it; outside any bracket the row falls back to self.
    """
    return 1.0 if k == w.open_bracket[q] else 0.0
