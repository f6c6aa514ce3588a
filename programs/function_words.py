def function_words(q: int, k: int, w: Window) -> float:
    """Function-word head: each query spreads its weight over the earlier closed-class words
    (determiners, prepositions, conjunctions, auxiliaries), with a little on the first token.

    Reads the token classes (`w.is_det`, `w.is_prep`, ...), defined once in attnc/window.py.
    """
    if k > q:
        return 0.0
    if k == 0:
        return 0.5
    if w.is_det[k] or w.is_prep[k] or w.is_conj[k] or w.is_aux[k]:
        return 1.0
    return 0.0
